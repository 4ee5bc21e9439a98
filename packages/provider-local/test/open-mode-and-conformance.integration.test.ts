import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeploymentPlanV2 } from '@keyward/core';
import { testTargetProvider } from '@keyward/core/testing';
import type { ThrowawayCertificates } from '@keyward/tokenizer/certificates';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalProvider, type LocalProvider } from '../src/index.js';
import {
  connectToTestRuntime,
  type DemoUpstream,
  demoUpstreamHost,
  demoUpstreamPort,
  remainingObjects,
  scanContainer,
  scanHostCommandLines,
  startDemoUpstream,
  testRuntimeKind,
  uniqueName,
} from '../src/testing/index.js';
import { lookedUpName, startDnsCapture } from './support/dns-capture.js';
import {
  type CheckReport,
  createUpstreamCertificates,
  demoUpstreamImage,
  ensureImages,
  runChecks,
  targetChecks,
  tokenizerPlan,
  tokenizerSelfTest,
} from './support/integration-environment.js';

/** podman, or docker under `pnpm test:docker` (KEYWARD_TEST_RUNTIME). */
const runtime = testRuntimeKind();

let docker: Docker;
let certificates: ThrowawayCertificates;

beforeAll(async () => {
  docker = await connectToTestRuntime();
  await ensureImages(docker);
  certificates = createUpstreamCertificates();
});

describe(`provider-local on real ${runtime}: open mode (shared network namespace)`, () => {
  let provider: LocalProvider;
  let upstream: DemoUpstream;
  let plan: DeploymentPlanV2;
  const name = uniqueName('it-open');
  const rawCredential = `open-${randomBytes(16).toString('hex')}`;

  beforeAll(async () => {
    upstream = await startDemoUpstream(docker, { image: demoUpstreamImage, certificates, runId: name });
    await upstream.acceptTokens([rawCredential]);
    provider = createLocalProvider({
      docker,
      lockDirectory: join(tmpdir(), `keyward-locks-${name}`),
      // Docker's ways of filling read-only volumes and of giving a new volume to the container's
      // user (its defaults; exercised on podman too).
      volumeWriteStrategy: 'writer-container',
      volumeOwnershipStrategy: 'owner-container',
    });
    plan = await tokenizerPlan({
      name,
      egress: 'open',
      caPem: certificates.caCertificatePem,
      stateDirectories: ['/home/node/.openclaw'],
      credentials: [
        { name: 'demo', secret: rawCredential, allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`] },
      ],
    });
  });

  afterAll(async () => {
    await provider?.delete(name, { removeVolumes: true }).catch(() => undefined);
    await upstream?.remove();
  });

  it('deploys with every container in the helper namespace, publishes the agent port and reaches sidecars on localhost', async () => {
    const detail = await provider.apply(plan);
    expect(detail.state).toBe('running');
    expect(detail.networkMode).toBe('open');
    expect((await fetch(`${detail.agentUrl}/health`)).status).toBe(200);
    const agent = await docker.getContainer(`keyward-${name}-agent`).inspect();
    expect(agent.HostConfig.NetworkMode).toMatch(/^container:/);
    expect(agent.Config.Env).toContain('TOKENIZER_PROXY_URL=http://localhost:4001');
    await upstream.attachTo(`keyward-${name}-egress`);
    const sidecarReports = await tokenizerSelfTest(provider, name, {
      allowedUrl: `https://${demoUpstreamHost}:${demoUpstreamPort}/open`,
    });
    expect(sidecarReports.filter((report) => !report.passed)).toEqual([]);
    // In open mode the agent CAN go around the proxy: the target's checks document what it reached.
    const reports = await targetChecks(provider, await provider.get(name));
    console.log(reports.map((report) => `${report.name}: ${report.passed} — ${report.evidence}`).join('\n'));
    expect(reports.map((report) => report.name)).toContain('direct-egress-blocked-open-mode');
    expect(reports.every((report) => report.passed)).toBe(true);
    expect(reports.find((report) => report.name === 'direct-egress-blocked-open-mode')?.evidence).toMatch(
      /^observed: /,
    );
    const received = await upstream.received();
    expect(received.some((request) => request.headers['authorization'] === `Bearer ${rawCredential}`)).toBe(
      true,
    );
  });

  it('open mode lets the agent’s DNS query out: the host-side capture sees it (documented, not blocked)', async () => {
    const dnsCheck = (await provider.verificationChecks(await provider.get(name))).filter(
      (check) => check.name === 'dns-blocked-open-mode',
    );
    const capture = await startDnsCapture();
    let reports: CheckReport[];
    let agentName: string;
    let seen: boolean;
    try {
      reports = await runChecks(provider, name, dnsCheck);
      agentName = lookedUpName(reports[0]?.evidence ?? '');
      seen = await capture.waitFor(agentName);
    } finally {
      await capture.stop();
    }
    console.log(`host capture: ${agentName} seen: ${seen}; ${reports[0]?.evidence}`);
    expect(seen, 'the agent’s query left through the shared namespace').toBe(true);
  });

  it('the agent holds neither the raw credential nor the open key', async () => {
    const openKey = plan.secrets.find((secret) => secret.name === 'tokenizer-open-key')?.value as string;
    const secrets = { rawCredential, openKey };
    expect((await scanContainer(docker, `keyward-${name}-agent`, secrets)).findings).toEqual([]);
    expect(await scanHostCommandLines(secrets)).toEqual([]);
  });

  it('delete keeps the agent state volume unless asked; a new apply reuses it, with what the agent wrote', async () => {
    // The agent (non-root) can write its state: the new volume was given to its user.
    const stateFile = '/home/node/.openclaw/keyward-state-check';
    const written = await provider.exec(name, {
      container: 'agent',
      command: ['node', '-'],
      stdin: `require('node:fs').writeFileSync(${JSON.stringify(stateFile)}, 'kept'); console.log(process.getuid());`,
    });
    expect(written.exitCode, written.stderr).toBe(0);
    expect(written.stdout.trim()).toBe('65532');
    await provider.delete(name);
    expect(await remainingObjects(docker, name)).toEqual([`volume keyward-${name}-agent-state-0`]);
    const createdAt = async () =>
      (
        (await docker.getVolume(`keyward-${name}-agent-state-0`).inspect()) as unknown as {
          CreatedAt: string;
        }
      ).CreatedAt;
    const volumeBefore = await createdAt();
    const detail = await provider.apply(plan);
    expect(detail.state).toBe('running');
    expect(await createdAt()).toBe(volumeBefore);
    const read = await provider.exec(name, {
      container: 'agent',
      command: ['node', '-'],
      stdin: `console.log(require('node:fs').readFileSync(${JSON.stringify(stateFile)}, 'utf8'));`,
    });
    expect(read.stdout.trim()).toBe('kept');
    await provider.delete(name, { removeVolumes: true });
    expect(await remainingObjects(docker, name)).toEqual([]);
  });
});

describe(`docker's way of joining several networks (connect after create), on ${runtime}`, () => {
  it('connects the extra networks between create and start, with the DNS alias on the internal one', async () => {
    const name = uniqueName('it-connect');
    const provider = createLocalProvider({ docker, networkAttachStrategy: 'connect-after-create' });
    const plan = await tokenizerPlan({
      name,
      egress: 'proxy-only',
      caPem: certificates.caCertificatePem,
      credentials: [
        { name: 'demo', secret: `c-${randomBytes(12).toString('hex')}`, allowedHosts: [demoUpstreamHost] },
      ],
    });
    try {
      expect((await provider.apply(plan)).state).toBe('running');
      const tokenizer = await docker.getContainer(`keyward-${name}-tokenizer`).inspect();
      const networks = tokenizer.NetworkSettings.Networks;
      expect(Object.keys(networks).sort()).toEqual([`keyward-${name}-egress`, `keyward-${name}-internal`]);
      expect(networks[`keyward-${name}-internal`]?.Aliases).toContain('tokenizer');
      const agent = await docker.getContainer(`keyward-${name}-agent`).inspect();
      const holder = await docker.getContainer(`keyward-${name}-agent-network`).inspect();
      expect(agent.HostConfig.NetworkMode).toBe(`container:${holder.Id}`);
    } finally {
      await provider.delete(name, { removeVolumes: true }).catch(() => undefined);
    }
    expect(await remainingObjects(docker, name)).toEqual([]);
  });
});

describe(`provider-local conformance (core/testing) on real ${runtime}`, () => {
  testTargetProvider({
    createProvider: () => createLocalProvider({ docker }),
    createPlan: (instanceName) =>
      tokenizerPlan({
        name: instanceName,
        egress: 'proxy-only',
        caPem: certificates.caCertificatePem,
        credentials: [
          {
            name: 'demo',
            secret: `conf-${randomBytes(12).toString('hex')}`,
            allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`],
          },
        ],
      }),
    instanceName: uniqueName('it-conformance'),
    execProbe: {
      command: ['node', '-'],
      stdin: 'console.log("exec-" + "probe")',
      expectStdout: 'exec-probe',
    },
  });
});
