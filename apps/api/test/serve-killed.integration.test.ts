import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labelKeys } from '@keyward/core';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import { connectToTestRuntime, remainingObjects, uniqueName } from '@keyward/provider-local/testing';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from './bundle.js';

// `keyward serve` (the real CLI, bundled from source) on real podman, killed with SIGKILL in the
// middle of a deploy, then started again on the same data directory: the job is still there,
// reconciled, and nothing labelled with the instance is left.
const name = uniqueName('api-killed');
const secret = `killed-${Math.random().toString(36).slice(2)}-credential`;

let directory: string;
let dataDirectory: string;
let cli: string;
let docker: Docker;
const servers: ChildProcess[] = [];

async function startServe(): Promise<{ url: string; process: ChildProcess; log: () => string }> {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0'], {
    env: {
      ...process.env,
      KEYWARD_DATA_DIR: dataDirectory,
      KEYWARD_BUILTINS: '@keyward/provider-local,@keyward/provider-tokenizer',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.push(child);
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 120_000);
    child.stderr!.on('data', (chunk) => {
      log += chunk;
      const match = /keyward API on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
  return { url, process: child, log: () => log };
}

function headers(): Record<string, string> {
  const token = readFileSync(join(dataDirectory, 'api-token'), 'utf8').trim();
  return { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
}

async function killed(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

beforeAll(async () => {
  docker = await connectToTestRuntime();
  for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
  directory = mkdtempSync(join(tmpdir(), 'keyward-killed-'));
  dataDirectory = join(directory, 'data');
  cli = join(directory, 'keyward.mjs');
  await bundle(new URL('../src/cli.ts', import.meta.url).pathname, cli);
}, 600_000);

afterAll(async () => {
  for (const child of servers) if (child.exitCode === null && child.signalCode === null) await killed(child);
  // Only what this test created: everything labelled with its unique instance name.
  const filters = { label: [`${labelKeys.instance}=${name}`] };
  for (const container of await docker.listContainers({ all: true, filters })) {
    await docker
      .getContainer(container.Id)
      .remove({ force: true })
      .catch(() => undefined);
  }
  for (const network of await docker.listNetworks({ filters })) {
    await docker
      .getNetwork(network.Id)
      .remove()
      .catch(() => undefined);
  }
  for (const volume of (await docker.listVolumes({ filters })).Volumes ?? []) {
    await docker
      .getVolume(volume.Name)
      .remove()
      .catch(() => undefined);
  }
  rmSync(directory, { recursive: true, force: true });
}, 120_000);

describe('keyward serve killed mid-deploy, then restarted', { timeout: 600_000 }, () => {
  it('answers for the job after the restart, rolled back, with nothing of the instance left', async () => {
    const first = await startServe();
    const accepted = await fetch(`${first.url}/api/instances`, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify({
        name,
        target: 'local',
        agent: {
          image: imageReference(imageDefinitions.agentStandIn),
          port: 18789,
          skillsDirectory: '/home/node/skills',
        },
        sidecars: {
          tokenizer: { credentials: [{ name: 'github', secret, allowedHosts: ['api.github.com'] }] },
        },
      }),
    });
    expect(accepted.status).toBe(202);
    const { jobId } = (await accepted.json()) as { jobId: string };

    // Follow the stream until the first container is being made, then kill the server there.
    const stream = await fetch(`${first.url}/api/jobs/${jobId}/events`, { headers: headers() });
    const reader = stream.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    let killedAt: string | undefined;
    while (!killedAt) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the deploy ended before it could be killed:\n${seen}`);
      seen += decoder.decode(value, { stream: true });
      const match = /"step":"(container\.[^"]+)","status":"started"/.exec(seen);
      if (match) killedAt = match[1];
      expect(seen).not.toContain('event: result');
    }
    await killed(first.process);
    await reader.cancel().catch(() => undefined);
    const halfMade = await remainingObjects(docker, name);
    expect(halfMade.length, `killed at ${killedAt}: something of the instance exists`).toBeGreaterThan(0);

    const second = await startServe();
    const job = (await (await fetch(`${second.url}/api/jobs/${jobId}`, { headers: headers() })).json()) as {
      status: string;
      reconciliation?: { outcome: string; message: string };
      error?: { code: string };
    };
    expect(job, JSON.stringify(job)).toMatchObject({
      status: 'failed',
      error: { code: 'DEPLOY_FAILED' },
      reconciliation: { outcome: 'rolled-back' },
    });
    const replay = await (
      await fetch(`${second.url}/api/jobs/${jobId}/events`, { headers: headers() })
    ).text();
    // The events the first process streamed before it died, then the reconciliation.
    expect(replay).toContain(`"step":"${killedAt}","status":"started"`);
    expect(replay).toMatch(/"step":"reconcile","status":"succeeded"/);
    expect(replay.trimEnd()).toMatch(/event: error\ndata: [^\n]+\nid: \d+$/);
    expect(
      (await remainingObjects(docker, name)).filter((object) => !object.startsWith('volume ')),
      'no container or network of the instance is left',
    ).toEqual([]);
    const missing = await fetch(`${second.url}/api/instances/${name}`, { headers: headers() });
    expect(missing.status).toBe(404);

    // The store never held the credential.
    const stored = ['keyward.sqlite', 'keyward.sqlite-wal'].map((file) => {
      try {
        return readFileSync(join(dataDirectory, file));
      } catch {
        return Buffer.alloc(0);
      }
    });
    expect(Buffer.concat(stored).includes(Buffer.from(secret))).toBe(false);
    await killed(second.process);
  });
});
