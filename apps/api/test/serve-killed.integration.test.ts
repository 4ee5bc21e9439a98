import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import { connectToTestRuntime, remainingObjects, uniqueName } from '@keyward/provider-local/testing';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  apiHeaders,
  bundleCli,
  killProcess,
  readEventsUntil,
  removeInstanceObjects,
  startedServers,
  startServe,
} from './serve-process.js';

// `keyward serve` (the real CLI, bundled from source) on real podman, killed with SIGKILL in the
// middle of a deploy, then started again on the same data directory: the job is still there,
// reconciled, and nothing labelled with the instance is left.
const name = uniqueName('api-killed');
const secret = `killed-${Math.random().toString(36).slice(2)}-credential`;

let directory: string;
let dataDirectory: string;
let cli: string;
let docker: Docker;

beforeAll(async () => {
  docker = await connectToTestRuntime();
  for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
  directory = mkdtempSync(join(tmpdir(), 'keyward-killed-'));
  dataDirectory = join(directory, 'data');
  cli = await bundleCli(directory);
}, 600_000);

afterAll(async () => {
  for (const child of startedServers) await killProcess(child);
  // Only what this test created: everything labelled with its unique instance name.
  await removeInstanceObjects(docker, name);
  rmSync(directory, { recursive: true, force: true });
}, 120_000);

describe('keyward serve killed mid-deploy, then restarted', { timeout: 600_000 }, () => {
  it('answers for the job after the restart, rolled back, with nothing of the instance left', async () => {
    const first = await startServe({ cli, dataDirectory });
    const headers = apiHeaders(dataDirectory);
    const accepted = await fetch(`${first.url}/api/instances`, {
      method: 'POST',
      headers,
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
    const { match, close } = await readEventsUntil(
      first.url,
      headers,
      jobId,
      /"step":"(container\.[^"]+)","status":"started"/,
    );
    const killedAt = match[1]!;
    await killProcess(first.process);
    await close();
    const halfMade = await remainingObjects(docker, name);
    expect(halfMade.length, `killed at ${killedAt}: something of the instance exists`).toBeGreaterThan(0);

    const second = await startServe({ cli, dataDirectory });
    const job = (await (await fetch(`${second.url}/api/jobs/${jobId}`, { headers })).json()) as {
      status: string;
      reconciliation?: { outcome: string; message: string };
      error?: { code: string };
    };
    expect(job, JSON.stringify(job)).toMatchObject({
      status: 'failed',
      error: { code: 'DEPLOY_FAILED' },
      reconciliation: { outcome: 'rolled-back' },
    });
    const replay = await (await fetch(`${second.url}/api/jobs/${jobId}/events`, { headers })).text();
    // The events the first process streamed before it died, then the reconciliation.
    expect(replay).toContain(`"step":"${killedAt}","status":"started"`);
    expect(replay).toMatch(/"step":"reconcile","status":"succeeded"/);
    expect(replay.trimEnd()).toMatch(/event: error\ndata: [^\n]+\nid: \d+$/);
    expect(
      (await remainingObjects(docker, name)).filter((object) => !object.startsWith('volume ')),
      'no container or network of the instance is left',
    ).toEqual([]);
    const missing = await fetch(`${second.url}/api/instances/${name}`, { headers });
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
    await killProcess(second.process);
  });
});
