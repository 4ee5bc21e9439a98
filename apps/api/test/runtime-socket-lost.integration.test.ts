import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labelKeys } from '@keyward/core';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import { connectToTestRuntime, remainingObjects, uniqueName } from '@keyward/provider-local/testing';
import Docker from 'dockerode';
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

// The runtime's API socket goes away in the middle of a deploy: `keyward serve` talks to a
// second podman API service of this test's own (its own socket, the machine's storage), which
// is killed with SIGKILL while a container is being made. The deploy fails with
// RUNTIME_UNAVAILABLE and says what to do; once the service answers again on the same socket,
// the server finishes the rollback by itself and the job records it: nothing of the instance
// is left. The same in the middle of a rotation: once the socket is back, the old containers
// (and credentials) are put back.
const name = uniqueName('faults-sock');
const rotatedName = uniqueName('faults-sock-rot');
const containersConfiguration = new URL('../../../scripts/ci/containers.conf', import.meta.url).pathname;

let directory: string;
let socketPath: string;
let docker: Docker;
let service: ChildProcess | undefined;
let dataDirectory: string;
let server: ServeProcess;

/** `podman system service` on the test's socket, once it answers a ping (at most 60 s). */
async function startPodmanService(): Promise<ChildProcess> {
  const log = openSync(join(directory, 'podman-service.log'), 'a');
  // From /: conmon inherits the working directory (see scripts/ci/start-podman.sh).
  const child = spawn('podman', ['system', 'service', '--time=0', `unix://${socketPath}`], {
    cwd: '/',
    env: { ...process.env, CONTAINERS_CONF: process.env['CONTAINERS_CONF'] ?? containersConfiguration },
    stdio: ['ignore', log, log],
  });
  const client = new Docker({ socketPath });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(
        `podman system service exited with ${child.exitCode}: ${readFileSync(join(directory, 'podman-service.log'), 'utf8')}`,
      );
    }
    try {
      await client.ping();
      return child;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`podman system service on ${socketPath} did not answer: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

async function stopPodmanService(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

beforeAll(async () => {
  // The machine's service, for the images and for checking what is left independently.
  docker = await connectToTestRuntime();
  for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
  directory = mkdtempSync(join(tmpdir(), 'keyward-socket-lost-'));
  socketPath = join(directory, 'podman.sock');
}, 600_000);

afterAll(async () => {
  for (const child of startedServers) await killProcess(child);
  await stopPodmanService(service);
  for (const instance of [name, rotatedName]) await removeInstanceObjects(docker, instance);
  rmSync(directory, { recursive: true, force: true });
}, 180_000);

describe("the runtime's API socket goes away", { timeout: 600_000 }, () => {
  const spec = (instance: string, secret: string) => ({
    name: instance,
    target: 'local',
    agent: {
      image: imageReference(imageDefinitions.agentStandIn),
      port: 18789,
      skillsDirectory: '/home/node/skills',
    },
    sidecars: {
      tokenizer: { credentials: [{ name: 'github', secret, allowedHosts: ['api.github.com'] }] },
    },
  });
  const send = async (method: string, path: string, body?: unknown) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: apiHeaders(dataDirectory),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  /** Kills the service once the job's event stream shows `step` started. */
  const killServiceAt = async (jobId: string, step: string) => {
    const { close } = await readEventsUntil(
      server.url,
      apiHeaders(dataDirectory),
      jobId,
      new RegExp(`"step":"${step.replace('.', '\\.')}","status":"started"`),
    );
    await stopPodmanService(service);
    await close();
  };

  it('mid-deploy: fails with RUNTIME_UNAVAILABLE, then rolls back once the socket is back', async () => {
    service = await startPodmanService();
    dataDirectory = join(directory, 'data');
    server = await startServe({
      cli: await bundleCli(directory),
      dataDirectory,
      environment: { DOCKER_HOST: `unix://${socketPath}` },
    });
    const headers = apiHeaders(dataDirectory);
    const accepted = await send('POST', '/api/instances', spec(name, 'ghp_socket-lost-deploy'));
    expect(accepted.status, await accepted.clone().text()).toBe(202);
    const { jobId } = (await accepted.json()) as { jobId: string };
    // The networks and helpers exist; the service dies while the tokenizer is being made.
    await killServiceAt(jobId, 'container.create:tokenizer');

    const failed = await waitForJob(server.url, headers, jobId, (job) => job.status !== 'running', 120_000);
    expect(failed, JSON.stringify(failed)).toMatchObject({
      status: 'failed',
      error: { code: 'RUNTIME_UNAVAILABLE', step: 'container.create:tokenizer' },
    });
    // What was wrong, and what to do.
    expect(failed.error?.message).toMatch(/the container runtime stopped answering/);
    expect(failed.error?.message).toMatch(/podman system service/);
    expect(failed.error?.message).toMatch(/could not all be removed yet/);
    expect(failed.error?.message).toMatch(/This server retries until the runtime answers/);
    expect(failed.reconciliation).toBeUndefined();
    const left = await remainingObjects(docker, name);
    expect(left.length, 'the lost runtime left part of the instance behind').toBeGreaterThan(0);

    // The API says the runtime is unreachable instead of hanging or answering 500.
    const lookup = await send('GET', `/api/instances/${name}`);
    expect(lookup.status).toBe(503);
    const { error } = (await lookup.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('RUNTIME_UNAVAILABLE');
    expect(error.message).toContain(`unix://${socketPath} does not answer`);

    // The socket comes back: the server's reconciliation retries (1 s, doubling) finish the rollback.
    service = await startPodmanService();
    const settled = await waitForJob(
      server.url,
      headers,
      jobId,
      (job) => job.reconciliation !== undefined,
      120_000,
    );
    expect(settled, JSON.stringify(settled)).toMatchObject({
      status: 'failed',
      error: { code: 'RUNTIME_UNAVAILABLE' },
      reconciliation: { outcome: 'rolled-back' },
    });
    const remaining = await remainingObjects(docker, name);
    expect(
      remaining.filter((object) => !object.startsWith('volume ')),
      'no container or network is left',
    ).toEqual([]);
    // Only data (state) volumes outlive a rolled-back deploy; none holds a secret.
    const { Volumes: volumes } = await docker.listVolumes({
      filters: { label: [`${labelKeys.instance}=${name}`] },
    });
    expect(
      (volumes ?? []).filter((volume) => volume.Labels?.['keyward.dev/volume-kind'] !== 'state'),
    ).toEqual([]);
    expect((await send('GET', `/api/instances/${name}`)).status).toBe(404);
  });

  it('mid-rotation: fails with RUNTIME_UNAVAILABLE, then puts the old containers back once the socket is back', async () => {
    const headers = apiHeaders(dataDirectory);
    const deployed = await send('POST', '/api/instances', spec(rotatedName, 'ghp_socket-lost-old'));
    expect(deployed.status, await deployed.clone().text()).toBe(202);
    const deployJob = ((await deployed.json()) as { jobId: string }).jobId;
    const deployment = await waitForJob(server.url, headers, deployJob, (job) => job.status !== 'running');
    expect(deployment.status, JSON.stringify(deployment)).toBe('succeeded');
    const filters = { label: [`${labelKeys.instance}=${rotatedName}`] };
    const before = (await docker.listContainers({ all: true, filters }))
      .map((container) => container.Id)
      .sort();

    const accepted = await send('PUT', `/api/instances/${rotatedName}/tokenizer`, {
      credentials: [{ name: 'github', secret: 'ghp_socket-lost-new', allowedHosts: ['api.github.com'] }],
    });
    expect(accepted.status, await accepted.clone().text()).toBe(202);
    const { jobId } = (await accepted.json()) as { jobId: string };
    await killServiceAt(jobId, 'container.create:tokenizer');

    const failed = await waitForJob(server.url, headers, jobId, (job) => job.status !== 'running', 120_000);
    expect(failed, JSON.stringify(failed)).toMatchObject({
      status: 'failed',
      error: { code: 'RUNTIME_UNAVAILABLE', step: 'container.create:tokenizer' },
    });
    expect(failed.error?.message).toMatch(/previous containers could not be put back yet/);
    expect(failed.error?.message).toMatch(/This server retries until the runtime answers/);

    service = await startPodmanService();
    const settled = await waitForJob(
      server.url,
      headers,
      jobId,
      (job) => job.reconciliation !== undefined,
      180_000,
    );
    expect(settled, JSON.stringify(settled)).toMatchObject({ reconciliation: { outcome: 'unchanged' } });
    expect(settled.reconciliation?.message).toMatch(/previous credentials are in place/);
    // The very containers from before the rotation, under their names, running: the old credentials.
    const after = await docker.listContainers({ all: true, filters });
    expect(after.map((container) => container.Id).sort()).toEqual(before);
    expect(after.every((container) => !container.Names[0]!.includes('-previous-'))).toBe(true);
    expect(after.every((container) => container.State === 'running')).toBe(true);
    const instance = (await (await send('GET', `/api/instances/${rotatedName}`)).json()) as { state: string };
    expect(instance.state).toBe('running');
    expect((await send('DELETE', `/api/instances/${rotatedName}`)).status).toBe(200);
    await killProcess(server.process);
  });
});
