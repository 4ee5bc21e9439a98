import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeName } from '@keyward/core';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import {
  connectToTestRuntime,
  containersOfInstance,
  type DemoUpstream,
  demoUpstreamHost,
  startDemoUpstream,
  uniqueName,
  unusedFileVolumes,
} from '@keyward/provider-local/testing';
import { createThrowawayCertificates } from '@keyward/tokenizer/certificates';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentProxiedRequest,
  demoUpstreamAddress,
  demoUpstreamInstanceSpec,
} from './demo-upstream-instance.js';
import {
  apiHeaders,
  bundleCli,
  killProcess,
  readEventsUntil,
  removeInstanceObjects,
  type ServeProcess,
  startedServers,
  startServe,
  waitForJob,
} from './serve-process.js';

// `keyward serve` on real podman, killed with SIGKILL in the middle of a credential rotation,
// then started again: reconciliation has the local target recover the instance (the old
// containers back, or the new ones finished), the job records which, no parked container or
// unused secret volume is left, and the agent's next request through the proxy carries the
// credential of that outcome.
const name = uniqueName('faults-rot');
const secrets = {
  first: `first-${randomBytes(16).toString('hex')}`,
  beforeAgent: `before-agent-${randomBytes(16).toString('hex')}`,
  afterAgent: `after-agent-${randomBytes(16).toString('hex')}`,
};

let directory: string;
let dataDirectory: string;
let cli: string;
let docker: Docker;
let upstream: DemoUpstream;
let server: ServeProcess;

beforeAll(async () => {
  docker = await connectToTestRuntime();
  for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
  directory = mkdtempSync(join(tmpdir(), 'keyward-killed-rotation-'));
  dataDirectory = join(directory, 'data');
  cli = await bundleCli(directory);
}, 600_000);

afterAll(async () => {
  for (const child of startedServers) await killProcess(child);
  await removeInstanceObjects(docker, name);
  await upstream?.remove();
  rmSync(directory, { recursive: true, force: true });
}, 180_000);

async function call(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method,
    headers: apiHeaders(dataDirectory),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** The agent's request through the proxy with its sealed `demo` credential; what the upstream got. */
async function agentRequestAuthorization(): Promise<string | undefined> {
  const result = await agentProxiedRequest(call, upstream, name);
  expect(result.passed, result.evidence).toBe(true);
  return result.authorization;
}

describe('keyward serve killed mid-rotation, then restarted', { timeout: 900_000 }, () => {
  it('deploys the instance the rotations run on', async () => {
    const certificates = createThrowawayCertificates({ dnsNames: [demoUpstreamHost], validDays: 2 });
    upstream = await startDemoUpstream(docker, {
      image: imageReference(imageDefinitions.demoUpstream),
      certificates,
      runId: name,
    });
    await upstream.acceptTokens(Object.values(secrets));
    server = await startServe({ cli, dataDirectory });
    const accepted = await call(
      'POST',
      '/api/instances',
      demoUpstreamInstanceSpec(name, secrets.first, certificates.caCertificatePem),
    );
    expect(accepted.status, await accepted.clone().text()).toBe(202);
    const { jobId } = (await accepted.json()) as { jobId: string };
    const job = await waitForJob(
      server.url,
      apiHeaders(dataDirectory),
      jobId,
      (view) => view.status !== 'running',
    );
    expect(job.status, JSON.stringify(job)).toBe('succeeded');
    await upstream.attachTo(runtimeName(name, 'egress'));
    expect(await agentRequestAuthorization()).toBe(`Bearer ${secrets.first}`);
  });

  // Killed before the new agent exists: the old containers come back. Killed once it exists:
  // the new ones are kept and started.
  const cases = [
    {
      killAt: 'container.create:tokenizer',
      secret: 'beforeAgent',
      outcome: 'unchanged',
      credential: 'first',
    },
    { killAt: 'container.start:agent', secret: 'afterAgent', outcome: 'completed', credential: 'afterAgent' },
  ] as const;
  let inPlace: keyof typeof secrets = 'first';
  for (const { killAt, secret, outcome, credential } of cases) {
    it(`killed at ${killAt}: the job records "${outcome}" and the ${credential} credential works`, async () => {
      const accepted = await call('PUT', `/api/instances/${name}/tokenizer`, {
        credentials: [{ name: 'demo', secret: secrets[secret], allowedHosts: [demoUpstreamAddress] }],
      });
      expect(accepted.status, await accepted.clone().text()).toBe(202);
      const { jobId } = (await accepted.json()) as { jobId: string };
      const step = killAt.replace('.', '\\.');
      const { close } = await readEventsUntil(
        server.url,
        apiHeaders(dataDirectory),
        jobId,
        new RegExp(`"step":"${step}","status":"started"`),
      );
      await killProcess(server.process);
      await close();
      const parked = (await containersOfInstance(docker, name)).filter((container) =>
        container.name.includes('-previous-'),
      );
      expect(
        parked.length,
        `killed at ${killAt}: the rotation had parked the old containers`,
      ).toBeGreaterThan(0);

      // Start-up reconciliation runs before the server listens.
      server = await startServe({ cli, dataDirectory });
      const job = await waitForJob(
        server.url,
        apiHeaders(dataDirectory),
        jobId,
        (view) => view.status !== 'running',
      );
      expect(job, JSON.stringify(job)).toMatchObject({ reconciliation: { outcome } });
      expect(job.status).toBe(outcome === 'completed' ? 'succeeded' : 'failed');
      if (outcome === 'unchanged') {
        expect(job.error?.code).toBe('ROTATION_FAILED');
        expect(job.error?.message).toMatch(/previous credentials are still in place/);
      }
      const replay = await (await call('GET', `/api/jobs/${jobId}/events`)).text();
      // The target's recovery steps, then the reconciliation, in the job's own stream.
      expect(replay).toMatch(/"step":"recover\.[^"]+","status":"succeeded"/);
      expect(replay).toMatch(/"step":"reconcile","status":"succeeded"/);

      const containers = await containersOfInstance(docker, name);
      expect(
        containers.filter((container) => container.name !== runtimeName(name, container.component)),
        'every container under its own name: nothing parked or left aside',
      ).toEqual([]);
      expect(containers.map((container) => container.component).sort()).toEqual([
        'agent',
        'agent-network',
        'network-helper',
        'tokenizer',
      ]);
      expect(containers.every((container) => container.state === 'running')).toBe(true);
      expect(
        await unusedFileVolumes(docker, name),
        'no secret file volume of the losing generation is left',
      ).toEqual([]);
      const instance = (await (await call('GET', `/api/instances/${name}`)).json()) as { state: string };
      expect(instance.state).toBe('running');

      // The agent's next request through the proxy carries the credential of the recorded outcome.
      expect(await agentRequestAuthorization()).toBe(`Bearer ${secrets[credential]}`);
      inPlace = credential;
    });
  }

  it('kept no credential in the job store', () => {
    expect(inPlace).toBe('afterAgent');
    const stored = Buffer.concat(
      ['keyward.sqlite', 'keyward.sqlite-wal'].map((file) => {
        try {
          return readFileSync(join(dataDirectory, file));
        } catch {
          return Buffer.alloc(0);
        }
      }),
    );
    expect(stored.length).toBeGreaterThan(0);
    for (const value of Object.values(secrets)) expect(stored.includes(Buffer.from(value))).toBe(false);
  });
});
