import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DeploymentPlanV2, type ProgressEventV2, parseInstanceSpec } from '@keyward/core';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execInContainer } from '../src/container-exec.js';
import { createLocalProvider, type LocalProvider } from '../src/index.js';
import {
  connectToTestRuntime,
  type DemoUpstream,
  demoUpstreamHost,
  demoUpstreamPort,
  startDemoUpstream,
  testRuntimeKind,
  uniqueName,
} from '../src/testing/index.js';
import { faultInjectingDocker } from './support/fault-injecting-docker.js';
import {
  createUpstreamCertificates,
  demoUpstreamImage,
  ensureImages,
  proxiedRequestScript,
  tokenizerPlan,
  tokenizerRotation,
} from './support/integration-environment.js';

/** podman, or docker under `pnpm test:docker` (KEYWARD_TEST_RUNTIME). */
const runtime = testRuntimeKind();

describe(`provider-local on real ${runtime}: rotating a stopped instance`, () => {
  let docker: Docker;
  let provider: LocalProvider;
  let upstream: DemoUpstream;
  let plan: DeploymentPlanV2;
  const name = uniqueName('it-rotate-stopped');
  const agentName = `keyward-${name}-agent`;
  const lockDirectory = join(tmpdir(), `keyward-locks-${name}`);
  const oldCredential = `old-${randomBytes(16).toString('hex')}`;
  const newCredential = `new-${randomBytes(16).toString('hex')}`;
  const upstreamHost = `${demoUpstreamHost}:${demoUpstreamPort}`;
  let oldSealedToken: string | undefined;

  /** Every container labelled with the instance (helper and sidecars included) and whether it runs. */
  async function runningStates(): Promise<Record<string, boolean>> {
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`keyward.dev/instance=${name}`] },
    });
    const states: Record<string, boolean> = {};
    for (const container of containers) {
      const inspected = await docker.getContainer(container.Id).inspect();
      states[inspected.Name.replace(/^\//, '')] = inspected.State.Running;
    }
    return states;
  }

  async function agentEnv(): Promise<string[]> {
    return (await docker.getContainer(agentName).inspect()).Config.Env ?? [];
  }

  async function rotationTo(secret: string) {
    return tokenizerRotation(provider, name, parseInstanceSpec((await provider.get(name)).redactedSpec), {
      credentials: [{ name: 'demo', secret, allowedHosts: [upstreamHost] }],
    });
  }

  beforeAll(async () => {
    docker = await connectToTestRuntime();
    await ensureImages(docker);
    const certificates = createUpstreamCertificates();
    upstream = await startDemoUpstream(docker, { image: demoUpstreamImage, certificates, runId: name });
    await upstream.acceptTokens([oldCredential, newCredential]);
    provider = createLocalProvider({ docker, lockDirectory });
    plan = await tokenizerPlan({
      name,
      egress: 'proxy-only',
      caPem: certificates.caCertificatePem,
      credentials: [{ name: 'demo', secret: oldCredential, allowedHosts: [upstreamHost] }],
    });
  });

  afterAll(async () => {
    await provider?.delete(name, { removeVolumes: true }).catch(() => undefined);
    await upstream?.remove();
  });

  it('rotateSecrets on a stopped instance replaces the containers without starting any', async () => {
    await provider.apply(plan);
    await upstream.attachTo(`keyward-${name}-egress`);
    oldSealedToken = (await agentEnv()).find((entry) => entry.startsWith('TOKENIZER_CRED_DEMO='));
    expect(oldSealedToken).toBeDefined();
    await provider.stop(name);
    const agentBefore = await docker.getContainer(agentName).inspect();

    const events: ProgressEventV2[] = [];
    const detail = await provider.rotateSecrets(name, await rotationTo(newCredential), {
      onProgress: (event) => events.push(event),
    });

    expect(detail.state).toBe('stopped');
    expect((await provider.get(name)).state).toBe('stopped');
    const states = await runningStates();
    expect(Object.keys(states).sort()).toEqual(
      [
        `keyward-${name}-agent`,
        `keyward-${name}-agent-network`,
        `keyward-${name}-network-helper`,
        `keyward-${name}-tokenizer`,
      ].sort(),
    );
    expect(Object.values(states).every((running) => running === false)).toBe(true);
    // The agent was replaced (new container, new sealed token), not just left alone.
    expect((await docker.getContainer(agentName).inspect()).Id).not.toBe(agentBefore.Id);
    expect(await agentEnv()).not.toContain(oldSealedToken);
    expect(events.filter((event) => event.step.startsWith('container.start:'))).toEqual([]);
    expect(events.some((event) => event.step === 'rotate' && event.status === 'info')).toBe(true);
  });

  it('a rotation of the stopped instance that fails midway leaves it stopped', async () => {
    const faults = faultInjectingDocker(docker);
    const faulty = createLocalProvider({ docker: faults.docker, lockDirectory });
    const request = await rotationTo(`never-${randomBytes(8).toString('hex')}`);
    const envBefore = await agentEnv();
    faults.failOn(`createContainer ${agentName}`);
    await expect(faulty.rotateSecrets(name, request)).rejects.toMatchObject({
      code: 'ROTATION_FAILED',
      details: { step: 'container.create:agent' },
    });
    expect(Object.values(await runningStates()).every((running) => running === false)).toBe(true);
    expect((await provider.get(name)).state).toBe('stopped');
    expect(await agentEnv()).toEqual(envBefore);
  });

  it('the next start runs with the new credential; the old one is gone', async () => {
    await provider.start(name);
    expect((await provider.get(name)).state).toBe('running');
    await upstream.clear();
    const result = await execInContainer(docker, agentName, ['node', '-'], {
      stdin: proxiedRequestScript,
      env: [`TARGET_URL=http://${upstreamHost}/v1/check`, 'CREDENTIAL_KEY=DEMO'],
    });
    expect(JSON.parse(result.stdout.trim())).toMatchObject({ status: 200 });
    const authorizations = (await upstream.received()).map((request) => request.headers['authorization']);
    expect(authorizations).toEqual([`Bearer ${newCredential}`]);
    expect(await agentEnv()).not.toContain(oldSealedToken);
  });
});
