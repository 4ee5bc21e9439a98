// Two keyward processes contend for one instance's rotation Lease on a real API server.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlane, startControlPlane } from './support/control-plane.js';

let controlPlane: ControlPlane;
const bundle = new URL('../node_modules/.cache/keyward-test/lease-contender.mjs', import.meta.url).pathname;

beforeAll(async () => {
  mkdirSync(new URL('../node_modules/.cache/keyward-test/', import.meta.url), { recursive: true });
  await build({
    entryPoints: [new URL('./support/lease-contender.ts', import.meta.url).pathname],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['dev-source'],
    external: ['@kubernetes/client-node'],
    outfile: bundle,
    logLevel: 'error',
  });
  controlPlane = await startControlPlane();
});

afterAll(async () => {
  await controlPlane?.stop();
});

interface Event {
  event: string;
  identity: string;
  at: number;
}

function contender(identity: string, holdMs: number, ending: 'release' | 'crash') {
  const child = spawn(
    process.execPath,
    [bundle, controlPlane.kubeconfigPath, 'default', identity, String(holdMs), ending],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const events: Event[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  let buffered = '';
  const listeners: (() => void)[] = [];
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line));
    for (const listener of listeners) listener();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    events,
    exited,
    at: (event: string) => events.find((item) => item.event === event)?.at,
    until: (event: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (events.some((item) => item.event === event)) resolve();
        };
        listeners.push(check);
        check();
        void exited.then(() =>
          events.some((item) => item.event === event)
            ? resolve()
            : reject(new Error(`${identity} exited before ${event}: ${stderr}`)),
        );
      }),
  };
}

describe('rotation Lease across processes', () => {
  it('two processes: one holds it, the other gets it only after the first released it', async () => {
    const first = contender('replica-a', 1500, 'release');
    const second = contender('replica-b', 500, 'release');
    expect(await first.exited).toBe(0);
    expect(await second.exited).toBe(0);
    const [winner, loser] =
      (first.at('acquired') ?? 0) < (second.at('acquired') ?? 0) ? [first, second] : [second, first];
    expect(loser.at('acquired')).toBeGreaterThanOrEqual(winner.at('releasing') ?? Number.POSITIVE_INFINITY);
  });

  it('a holder killed with SIGKILL blocks the other only until its Lease expires (3 s)', async () => {
    const crashing = contender('replica-crash', 200, 'crash');
    await crashing.until('acquired');
    const waiting = contender('replica-next', 100, 'release');
    await crashing.exited;
    expect(await waiting.exited).toBe(0);
    const acquiredAt = waiting.at('acquired') ?? 0;
    const crashedHolderAcquiredAt = crashing.at('acquired') ?? 0;
    // Not before the expiry, and not much after it.
    expect(acquiredAt - crashedHolderAcquiredAt).toBeGreaterThanOrEqual(3000);
    expect(acquiredAt - crashedHolderAcquiredAt).toBeLessThan(10_000);
  });
});
