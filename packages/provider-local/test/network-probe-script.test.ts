// The probe script run by this machine's node (what the checks run inside the agent), against
// loopback listeners: a port that accepts, a port that refuses, an address nothing routes to.
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  formatOutcome,
  isBlocked,
  type NetworkProbe,
  networkProbeScript,
  type ProbeOutcome,
} from '../src/network-probe-script.js';

async function runProbes(probes: NetworkProbe[]): Promise<ProbeOutcome[]> {
  const output = await runScript(probes);
  return (JSON.parse(output.trim().split('\n').pop() as string) as { results: ProbeOutcome[] }).results;
}

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

  it('judges DNS by what each server did with the direct query when the resolver got no answer', () => {
    // docker gives a loopback-only container the host's resolver; c-ares says ECONNREFUSED for "could not send".
    const dockerAgent = {
      target: 'dns x via 10.255.255.53',
      outcome: 'ECONNREFUSED',
      servers: ['10.255.255.53'],
      direct: [{ server: '10.255.255.53:53', outcome: 'ENETUNREACH' }],
    };
    expect(isBlocked(dockerAgent)).toBe(true);
    expect(formatOutcome(dockerAgent)).toBe(
      'dns x via 10.255.255.53 ECONNREFUSED (asked directly: 10.255.255.53:53 ENETUNREACH)',
    );
    // A refusal from another host, or an answer to the direct query, is reachable.
    expect(
      isBlocked({ ...dockerAgent, direct: [{ server: '10.255.255.53:53', outcome: 'ECONNREFUSED' }] }),
    ).toBe(false);
    expect(
      isBlocked({
        ...dockerAgent,
        outcome: 'timeout',
        direct: [{ server: '10.255.255.53:53', outcome: 'answered' }],
      }),
    ).toBe(false);
    // Any server that was reached makes it reachable.
    expect(
      isBlocked({
        ...dockerAgent,
        direct: [
          { server: '10.255.255.53:53', outcome: 'ENETUNREACH' },
          { server: '10.0.0.2:53', outcome: 'timeout' },
          { server: '10.0.0.3:53', outcome: 'answered' },
        ],
      }),
    ).toBe(false);
  });

  describe('DNS against loopback servers', () => {
    let answering: Socket;
    let answeringPort = 0;
    let silentPort = 0;
    beforeAll(async () => {
      // Answers every query with NXDOMAIN: the query back, flagged as a response.
      answering = createSocket('udp4');
      answering.on('message', (message, from) => {
        const reply = Buffer.from(message);
        reply.writeUInt16BE(0x8183, 2);
        answering.send(reply, from.port, from.address);
      });
      await new Promise<void>((resolve) => answering.bind(0, '127.0.0.1', resolve));
      answeringPort = answering.address().port;
      const closed = createSocket('udp4');
      await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
      silentPort = closed.address().port;
      await new Promise<void>((resolve) => closed.close(resolve));
    });
    afterAll(() => new Promise<void>((resolve) => answering.close(resolve)));

    it('an answering server (even NXDOMAIN) is reachable, a closed loopback port is blocked', async () => {
      const [answered, refused] = await runProbes([
        { kind: 'dns', name: 'keyward-probe.example.com', servers: [`127.0.0.1:${answeringPort}`] },
        { kind: 'dns', name: 'keyward-probe.example.com', servers: [`127.0.0.1:${silentPort}`] },
      ]);
      expect(answered?.outcome).toBe('ENOTFOUND');
      expect(answered?.direct).toEqual([{ server: `127.0.0.1:${answeringPort}`, outcome: 'answered' }]);
      expect(isBlocked(answered as ProbeOutcome)).toBe(false);
      expect(refused?.outcome).toBe('ECONNREFUSED');
      expect(refused?.direct).toEqual([{ server: `127.0.0.1:${silentPort}`, outcome: 'ECONNREFUSED' }]);
      expect(isBlocked(refused as ProbeOutcome)).toBe(true);
    });
  });
});
