// The probe script run by this machine's node (what the checks run inside the agent), against
// loopback listeners: a port that accepts, a port that refuses, an address nothing routes to.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBlocked, type NetworkProbe, networkProbeScript } from '../src/network-probe-script.js';

function runScript(probes: NetworkProbe[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('close', () => resolve(out));
    child.stdin.end(networkProbeScript(probes));
  });
}

describe('network probe script', () => {
  let server: Server;
  let openPort = 0;
  let closedPort = 0;
  beforeAll(async () => {
    server = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    openPort = (server.address() as { port: number }).port;
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('reports connected and refused as reachable, an unresolvable name as blocked', async () => {
    const output = await runScript([
      { kind: 'tcp', host: '127.0.0.1', port: openPort },
      { kind: 'tcp', host: '127.0.0.1', port: closedPort },
      { kind: 'tcp', host: 'keyward-no-such-host.invalid', port: 80 },
    ]);
    const { results } = JSON.parse(output.trim().split('\n').pop() as string) as {
      results: { target: string; outcome: string }[];
    };
    expect(results.map((result) => result.outcome)).toEqual([
      'connected',
      'ECONNREFUSED',
      expect.stringMatching(/ENOTFOUND|EAI_AGAIN/),
    ]);
    expect(results.map((result) => isBlocked(result))).toEqual([false, false, true]);
  });

  it('judges DNS: any answer is reachable; a timeout, or a refusal only from its own loopback, is blocked', () => {
    expect(isBlocked({ target: 'dns x via 10.89.0.1', outcome: 'ENOTFOUND', servers: ['10.89.0.1'] })).toBe(
      false,
    );
    expect(
      isBlocked({ target: 'dns x via 10.89.0.1', outcome: 'ECONNREFUSED', servers: ['10.89.0.1'] }),
    ).toBe(false);
    expect(isBlocked({ target: 'dns x via 10.89.0.1', outcome: 'timeout', servers: ['10.89.0.1'] })).toBe(
      true,
    );
    expect(
      isBlocked({ target: 'dns x via 127.0.0.1', outcome: 'ECONNREFUSED', servers: ['127.0.0.1'] }),
    ).toBe(true);
    expect(isBlocked({ target: '1.1.1.1:443', outcome: 'ENETUNREACH' })).toBe(true);
    expect(isBlocked({ target: '10.0.0.1:22', outcome: 'ECONNRESET' })).toBe(false);
  });
});
