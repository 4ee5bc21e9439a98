import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeploymentPlanV1, ProgressEventV1 } from '@keyward/core';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execInContainer } from '../src/container-exec.js';
import { createLocalProvider, type LocalProvider } from '../src/index.js';
import { scanContainer, scanHostCommandLines } from './secret-scan.js';
import {
  connectToRuntime,
  createTestCertificates,
  type DemoUpstream,
  ensureImages,
  proxiedRequestScript,
  remainingObjects,
  startDemoUpstream,
  type TestCertificates,
  tokenizerPlan,
  uniqueName,
  upstreamHost,
  upstreamPort,
} from './support/podman-environment.js';

describe('provider-local on real podman: proxy-only', () => {
  let docker: Docker;
  let provider: LocalProvider;
  let certificates: TestCertificates;
  let upstream: DemoUpstream;
  let plan: DeploymentPlanV1;
  const name = uniqueName('it-proxy');
  const rawCredential = `demo-${randomBytes(16).toString('hex')}`;
  const events: ProgressEventV1[] = [];

  const openKey = () => plan.secrets.find((secret) => secret.name === 'tokenizer-open-key')?.value as string;

  async function proxiedRequest(credentialKey: string | undefined, path = '/v1/check') {
    const result = await execInContainer(docker, `keyward-${name}-agent`, ['node', '-'], {
      stdin: proxiedRequestScript,
      env: [
        `TARGET_URL=http://${upstreamHost}:${upstreamPort}${path}`,
        ...(credentialKey ? [`CREDENTIAL_KEY=${credentialKey}`] : []),
      ],
    });
    return JSON.parse(result.stdout.trim()) as { status: number; body: string };
  }

  beforeAll(async () => {
    docker = await connectToRuntime();
    await ensureImages(docker);
    certificates = await createTestCertificates();
    upstream = await startDemoUpstream(docker, certificates, name);
    await upstream.acceptTokens([rawCredential]);
    provider = createLocalProvider({ docker, lockDirectory: join(tmpdir(), `keyward-locks-${name}`) });
    plan = await tokenizerPlan({
      name,
      egress: 'proxy-only',
      caPem: certificates.caPem,
      credentials: [
        { name: 'demo', secret: rawCredential, allowedHosts: [`${upstreamHost}:${upstreamPort}`] },
      ],
    });
  });

  afterAll(async () => {
    await provider?.delete(name, { removeVolumes: true }).catch(() => undefined);
    await upstream?.remove();
    if (certificates) await rm(certificates.directory, { recursive: true, force: true });
  });

  it('deploys networks, volumes, secrets, sidecars and then the agent, with progress', async () => {
    const detail = await provider.apply(plan, { onProgress: (event) => events.push(event) });
    expect(detail.state).toBe('running');
    expect(detail.networkMode).toBe('proxy-only');
    const started = events.filter((event) => event.status === 'started').map((event) => event.step);
    expect(started.indexOf('network.create:internal')).toBeLessThan(
      started.indexOf('container.create:tokenizer'),
    );
    expect(started.indexOf('container.ready:tokenizer')).toBeLessThan(
      started.indexOf('container.create:agent'),
    );
    expect(detail.agentUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${detail.agentUrl}/health`);
    expect(health.status).toBe(200);
    await upstream.attachTo(plan.network.egressNetwork as string);
  });

  it('applying the same plan again changes nothing', async () => {
    const before = await docker.listContainers({
      all: true,
      filters: { label: [`keyward.dev/instance=${name}`] },
    });
    await provider.apply(plan);
    const after = await docker.listContainers({
      all: true,
      filters: { label: [`keyward.dev/instance=${name}`] },
    });
    expect(after.map((container) => container.Id).sort()).toEqual(
      before.map((container) => container.Id).sort(),
    );
  });

  it('the self-test proves no direct egress, credential injection and refusal of unbound hosts', async () => {
    const result = await provider.verify(name, {
      allowedUrl: `https://${upstreamHost}:${upstreamPort}/v1/verify`,
    });
    expect(result.checks.map((check) => [check.name, check.passed])).toEqual([
      ['direct-egress-blocked', true],
      ['proxied-request-injected', true],
      ['unbound-host-refused', true],
    ]);
    expect(result.passed).toBe(true);
    expect(JSON.stringify(result)).not.toContain(rawCredential);
    const received = await upstream.received();
    expect(received.some((request) => request.headers['authorization'] === `Bearer ${rawCredential}`)).toBe(
      true,
    );
  });

  it('a proxied request from the agent gets the credential injected; without the sealed token the proxy refuses', async () => {
    await upstream.clear();
    expect((await proxiedRequest('DEMO')).status).toBe(200);
    const [request] = await upstream.received();
    expect(request?.headers['authorization']).toBe(`Bearer ${rawCredential}`);
    expect((await proxiedRequest(undefined)).status).toBeGreaterThanOrEqual(400);
  });

  it('the open key sits only in the tokenizer: never in the agent, its env, filesystem, inspect, or any argv', async () => {
    const secrets = { rawCredential, openKey: openKey() };
    const agentScan = await scanContainer(docker, `keyward-${name}-agent`, secrets);
    expect(agentScan.filesScanned).toBeGreaterThan(5);
    expect(agentScan.findings).toEqual([]);
    const helperScan = await scanContainer(docker, `keyward-${name}-network-helper`, secrets);
    expect(helperScan.findings).toEqual([]);
    expect(await scanHostCommandLines(secrets)).toEqual([]);
    // The scan can find things: the tokenizer's own volume does hold the open key.
    const tokenizerScan = await scanContainer(docker, `keyward-${name}-tokenizer`, secrets);
    expect(tokenizerScan.findings.map((finding) => finding.secret)).toEqual(['openKey']);
    expect(JSON.stringify(await docker.getContainer(`keyward-${name}-tokenizer`).inspect())).not.toContain(
      openKey(),
    );
  });

  it('readSidecarState reads the open key back from the tokenizer volume and the tokens from the agent', async () => {
    const state = await provider.readSidecarState(name, 'tokenizer');
    expect(state.secrets['tokenizer-open-key']).toBe(openKey());
    for (const secret of plan.secrets) expect(state.secrets[secret.name]).toBe(secret.value);
    expect(JSON.stringify(state.metadata)).not.toContain(rawCredential);
  });

  it('stop, start, restart, logs and list work from labels', async () => {
    await provider.stop(name);
    expect((await provider.get(name)).state).toBe('stopped');
    await provider.start(name);
    expect((await provider.get(name)).state).toBe('running');
    await provider.restart(name);
    const detail = await provider.get(name);
    expect(detail.state).toBe('running');
    expect((await fetch(`${detail.agentUrl}/health`)).status).toBe(200);
    const lines: string[] = [];
    for await (const line of provider.logs(name, { container: 'agent' })) lines.push(line.line);
    expect(lines.some((line) => line.includes('stand-in agent listening on 18789'))).toBe(true);
    const controller = new AbortController();
    const followed: string[] = [];
    setTimeout(() => controller.abort(), 1500);
    for await (const line of provider.logs(name, { follow: true, tail: 5, signal: controller.signal })) {
      followed.push(line.container);
    }
    expect(followed.length).toBeGreaterThan(0);
    expect((await provider.list()).find((instance) => instance.name === name)?.state).toBe('running');
  });

  it('delete removes every labelled object', async () => {
    await provider.delete(name, { removeVolumes: true });
    expect(await remainingObjects(docker, name)).toEqual([]);
    await expect(provider.get(name)).rejects.toMatchObject({ code: 'INSTANCE_NOT_FOUND' });
  });
});
