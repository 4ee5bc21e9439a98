import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labelKeys, runtimeName } from '@keyward/core';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import {
  connectToTestRuntime,
  type DemoUpstream,
  demoUpstreamHost,
  demoUpstreamPort,
  startDemoUpstream,
  uniqueName,
} from '@keyward/provider-local/testing';
import { createThrowawayCertificates } from '@keyward/tokenizer/certificates';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
const upstreamHost = `${demoUpstreamHost}:${demoUpstreamPort}`;
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

/** The instance's containers by label: name, state and generation. */
async function containersOfInstance(): Promise<{ name: string; state: string; component: string }[]> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`${labelKeys.instance}=${name}`] },
  });
  return list.map((summary) => ({
    name: (summary.Names[0] ?? '').replace(/^\//, ''),
    state: summary.State,
    component: summary.Labels[labelKeys.component] ?? '',
  }));
}

/** File volumes of the instance that no container mounts: what an interrupted rotation could leak. */
async function unusedFileVolumes(): Promise<string[]> {
  const filters = { label: [`${labelKeys.instance}=${name}`] };
  const { Volumes: volumes } = await docker.listVolumes({ filters });
  const mounted = new Set<string>();
  for (const summary of await docker.listContainers({ all: true, filters })) {
    const info = await docker.getContainer(summary.Id).inspect();
    for (const mount of info.Mounts ?? []) if (mount.Name) mounted.add(mount.Name);
  }
  return (volumes ?? [])
    .filter((volume) => volume.Labels?.['keyward.dev/volume-kind'] === 'files' && !mounted.has(volume.Name))
    .map((volume) => volume.Name);
}

/** The agent's request through the proxy with its sealed `demo` credential; returns what the upstream got. */
async function agentRequestAuthorization(): Promise<string | undefined> {
  await upstream.clear();
  const response = await call('POST', `/api/instances/${name}/verify`, {
    options: { tokenizer: { allowedUrl: `https://${upstreamHost}/v1/verify`, credential: 'demo' } },
  });
  const report = (await response.json()) as { checks: { name: string; passed: boolean; evidence: string }[] };
  const injected = report.checks.find((check) => check.name === 'proxied-request-injected');
  expect(injected, JSON.stringify(report)).toMatchObject({ passed: true });
  return (await upstream.received()).at(-1)?.headers['authorization'];
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
    const accepted = await call('POST', '/api/instances', {
      name,
      target: 'local',
      agent: {
        image: imageReference(imageDefinitions.agentStandIn),
        port: 18789,
        skillsDirectory: '/home/node/skills',
      },
      sidecars: {
        tokenizer: {
          credentials: [{ name: 'demo', secret: secrets.first, allowedHosts: [upstreamHost] }],
          upstreamCaCertificates: certificates.caCertificatePem,
          // The demo upstream lives on a private container network.
          allowPrivateUpstreams: true,
        },
      },
    });
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
        credentials: [{ name: 'demo', secret: secrets[secret], allowedHosts: [upstreamHost] }],
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
      const parked = (await containersOfInstance()).filter((container) =>
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

      const containers = await containersOfInstance();
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
      expect(await unusedFileVolumes(), 'no secret file volume of the losing generation is left').toEqual([]);
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
