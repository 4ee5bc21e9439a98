import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DeploymentPlanV2, type ProgressEventV2, parseInstanceSpec } from '@keyward/core';
import type { ThrowawayCertificates } from '@keyward/tokenizer/certificates';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execInContainer } from '../src/container-exec.js';
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
import {
  capturedQueryFor,
  lookedUpName,
  lookUpFromContainer,
  startDnsCapture,
  uniqueExternalName,
} from './support/dns-capture.js';
import { faultInjectingDocker } from './support/fault-injecting-docker.js';
import {
  type CheckReport,
  createUpstreamCertificates,
  demoUpstreamImage,
  ensureImages,
  proxiedRequestScript,
  runChecks,
  targetChecks,
  tokenizerPlan,
  tokenizerRotation,
  tokenizerSelfTest,
} from './support/integration-environment.js';

/** podman, or docker under `pnpm test:docker` (KEYWARD_TEST_RUNTIME). */
const runtime = testRuntimeKind();

/** Milliseconds per step, from started to succeeded/failed: printed to see where time goes. */
function stepDurations(events: ProgressEventV2[]): string {
  const started = new Map<string, number>();
  const lines: string[] = [];
  for (const event of events) {
    if (event.status === 'started') started.set(event.step, Date.parse(event.time));
    else if (started.has(event.step)) {
      lines.push(`${event.step} ${Date.parse(event.time) - (started.get(event.step) ?? 0)} ms`);
    }
  }
  return lines.join('\n');
}

describe(`provider-local on real ${runtime}: proxy-only`, () => {
  let docker: Docker;
  let provider: LocalProvider;
  let certificates: ThrowawayCertificates;
  let upstream: DemoUpstream;
  let plan: DeploymentPlanV2;
  const name = uniqueName('it-proxy');
  const rawCredential = `demo-${randomBytes(16).toString('hex')}`;
  const legacyCredential = `legacy-${randomBytes(16).toString('hex')}`;
  const addedCredential = `added-${randomBytes(16).toString('hex')}`;
  const events: ProgressEventV2[] = [];
  let hostListener: Server;

  const openKey = () => plan.secrets.find((secret) => secret.name === 'tokenizer-open-key')?.value as string;

  async function proxiedRequest(credentialKey: string | undefined, path = '/v1/check') {
    const result = await execInContainer(docker, `keyward-${name}-agent`, ['node', '-'], {
      stdin: proxiedRequestScript,
      env: [
        `TARGET_URL=http://${demoUpstreamHost}:${demoUpstreamPort}${path}`,
        ...(credentialKey ? [`CREDENTIAL_KEY=${credentialKey}`] : []),
      ],
    });
    try {
      return JSON.parse(result.stdout.trim()) as { status: number; body: string };
    } catch {
      throw new Error(
        `proxied request script failed (exit ${result.exitCode}): ${result.stdout} ${result.stderr}`,
      );
    }
  }

  beforeAll(async () => {
    docker = await connectToTestRuntime();
    await ensureImages(docker);
    certificates = createUpstreamCertificates();
    upstream = await startDemoUpstream(docker, { image: demoUpstreamImage, certificates, runId: name });
    await upstream.acceptTokens([rawCredential, legacyCredential, addedCredential]);
    // A service on the host's every address, as a database or dev server would be.
    hostListener = createServer((socket) => socket.end('host says hi\n'));
    await new Promise<void>((resolve) => hostListener.listen(0, '0.0.0.0', resolve));
    const hostPort = (hostListener.address() as AddressInfo).port;
    provider = createLocalProvider({
      docker,
      lockDirectory: join(tmpdir(), `keyward-locks-${name}`),
      verificationHostPorts: [hostPort, 22],
    });
    plan = await tokenizerPlan({
      name,
      egress: 'proxy-only',
      caPem: certificates.caCertificatePem,
      credentials: [
        { name: 'demo', secret: rawCredential, allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`] },
        {
          name: 'legacy',
          secret: legacyCredential,
          allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`],
        },
      ],
    });
  });

  afterAll(async () => {
    hostListener?.close();
    await provider?.delete(name, { removeVolumes: true }).catch(() => undefined);
    await upstream?.remove();
  });

  it('deploys networks, volumes, secrets, sidecars and then the agent, with progress', async () => {
    const detail = await provider.apply(plan, { onProgress: (event) => events.push(event) });
    await upstream.attachTo(`keyward-${name}-egress`);
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
    // The agent: no network of its own, hardened, no host cgroup tree.
    const agent = await docker.getContainer(`keyward-${name}-agent`).inspect();
    const holder = await docker.getContainer(`keyward-${name}-agent-network`).inspect();
    expect(holder.HostConfig.NetworkMode).toBe('none');
    expect(agent.HostConfig.NetworkMode).toBe(`container:${holder.Id}`);
    expect(agent.HostConfig.CapAdd ?? []).toEqual([]);
    expect(agent.HostConfig.SecurityOpt).toContain('no-new-privileges');
    expect(agent.HostConfig.ReadonlyRootfs).toBe(true);
    // podman adds /run and /var/tmp to a read-only container (its read_only_tmpfs default).
    expect(Object.keys(agent.HostConfig.Tmpfs ?? {})).toContain('/tmp');
    // Every cgroup hierarchy mounted into the agent is read-only (mountinfo: options field 6, fstype after " - ").
    const inside = await provider.exec(name, {
      container: 'agent',
      command: ['node', '-'],
      stdin: `
        const fs = require('fs');
        const cgroups = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').filter(Boolean)
          .map((line) => { const [head, tail] = line.split(' - '); const fields = head.split(' ');
            return { root: fields[3], at: fields[4], options: fields[5], type: tail.split(' ')[0] }; })
          .filter((mount) => mount.at.startsWith('/sys/fs/cgroup') && mount.type.startsWith('cgroup'));
        const status = fs.readFileSync('/proc/self/status', 'utf8');
        const field = (name) => (status.match(new RegExp('^' + name + ':\\\\s*(\\\\S+)', 'm')) || [])[1];
        console.log(JSON.stringify({ net: fs.readdirSync('/sys/class/net'), cgroups,
          capEff: field('CapEff'), capBnd: field('CapBnd'), noNewPrivs: field('NoNewPrivs') }));`,
    });
    const seen = JSON.parse(inside.stdout.trim()) as {
      net: string[];
      cgroups: { root: string; at: string; options: string }[];
      capEff: string;
      capBnd: string;
      noNewPrivs: string;
    };
    // No capability at all, even in the bounding set, and no privilege gain.
    expect([seen.capEff, seen.capBnd, seen.noNewPrivs]).toEqual([
      '0000000000000000',
      '0000000000000000',
      '1',
    ]);
    expect(seen.net).toEqual(['lo']);
    expect(seen.cgroups.filter((mount) => !mount.options.split(',').includes('ro'))).toEqual([]);
    const health = await fetch(`${detail.agentUrl}/health`);
    expect(health.status).toBe(200);
    const env = (await docker.getContainer(`keyward-${name}-agent`).inspect()).Config.Env ?? [];
    expect(
      env
        .map((entry) => entry.split('=')[0])
        .filter((key) => key?.startsWith('TOKENIZER_CRED_'))
        .sort(),
    ).toEqual(['TOKENIZER_CRED_DEMO', 'TOKENIZER_CRED_LEGACY']);
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

  it('the self-test proves no direct egress (the target’s check), credential injection, refusal of unbound hosts and of a token the agent seals itself (the tokenizer’s checks)', async () => {
    // The allow-list really is in place: provider-tokenizer's contribution put it in the plan.
    expect(
      plan.containers.find((container) => container.name === 'tokenizer')?.env[
        'TOKENIZER_ALLOWED_TOKENS_FILE'
      ],
    ).toBeTruthy();
    const sidecarReports = await tokenizerSelfTest(provider, name, {
      allowedUrl: `https://${demoUpstreamHost}:${demoUpstreamPort}/v1/verify`,
    });
    expect(sidecarReports.map((check) => [check.name, check.passed])).toEqual([
      ['proxied-request-injected', true],
      ['unbound-host-refused', true],
      ['credential-header-pinned', true],
      ['self-sealed-token-refused', true],
    ]);
    const reports = await targetChecks(provider, await provider.get(name));
    console.log(reports.map((report) => `${report.name}: ${report.passed} — ${report.evidence}`).join('\n'));
    expect(reports.map((report) => [report.name, report.passed])).toEqual([
      ['direct-egress-blocked', true],
      ['dns-blocked', true],
      ['host-gateway-blocked', true],
      ['host-containers-internal-blocked', true],
      ['host-ipv6-link-local-blocked', true],
      ['host-addresses-blocked', true],
      ['other-containers-blocked', true],
      ['allowed-connections-reachable', true],
    ]);
    // Blocked by construction: nothing answered, not even a refusal.
    for (const report of reports.slice(0, -1).filter((item) => item.name !== 'dns-blocked')) {
      expect(report.evidence).not.toMatch(/ECONNREFUSED|connected/);
    }
    // DNS: podman gives the agent no resolver, so node asks its own loopback, where nothing
    // listens; docker gives it the host's, which it has no route to. The query sent to each
    // server directly says which.
    expect(reports.find((report) => report.name === 'dns-blocked')?.evidence).toMatch(
      runtime === 'podman'
        ? /via (127\.0\.0\.1|\(no servers\)) (ECONNREFUSED|timeout|ETIMEOUT) \(asked directly: 127\.0\.0\.1:53 ECONNREFUSED\)/
        : /via [\d.]+ (ECONNREFUSED|timeout|ETIMEOUT) \(asked directly: [\d.]+:53 ENETUNREACH\)/,
    );
    expect(reports.find((report) => report.name === 'other-containers-blocked')?.evidence).toMatch(/:4001 /);
    expect(JSON.stringify([...sidecarReports, ...reports])).not.toContain(rawCredential);
    const received = await upstream.received();
    expect(received.some((request) => request.headers['authorization'] === `Bearer ${rawCredential}`)).toBe(
      true,
    );
  });

  it('no DNS query of the agent leaves it: a host-side capture sees none, while it sees one from a container on a normal network', async () => {
    const dnsCheck = (await provider.verificationChecks(await provider.get(name))).filter(
      (check) => check.name === 'dns-blocked',
    );
    const control = uniqueExternalName('keyward-capture-control');
    const capture = await startDnsCapture();
    let pcap: Buffer;
    let reports: CheckReport[];
    let controlSeen: boolean;
    try {
      reports = await runChecks(provider, name, dnsCheck);
      // The demo upstream sits on a normal network with a resolver: its later lookup must show up.
      await lookUpFromContainer(docker, upstream.containerName, control);
      controlSeen = await capture.waitFor(control);
    } finally {
      pcap = await capture.stop();
    }
    expect(reports.map((report) => [report.name, report.passed])).toEqual([['dns-blocked', true]]);
    const agentName = lookedUpName(reports[0]?.evidence ?? '');
    console.log(
      `host capture: ${pcap.length} bytes; ${control} seen: ${controlSeen}; ${agentName} seen: ${capturedQueryFor(pcap, agentName)}`,
    );
    expect(controlSeen, 'the capture saw the control lookup').toBe(true);
    expect(capturedQueryFor(pcap, agentName), 'a query for the agent’s name left it').toBe(false);
  });

  it('a proxied request from the agent gets the credential injected; without the sealed token the proxy refuses', async () => {
    await upstream.clear();
    expect((await proxiedRequest('DEMO')).status).toBe(200);
    const [request] = await upstream.received();
    expect(request?.headers['authorization']).toBe(`Bearer ${rawCredential}`);
    expect((await proxiedRequest(undefined)).status).toBeGreaterThanOrEqual(400);
  });

  it('the open key sits only in the tokenizer: never in the agent, its env, filesystem, inspect, or any argv', async () => {
    const secrets = { rawCredential, legacyCredential, openKey: openKey() };
    const agentScan = await scanContainer(docker, `keyward-${name}-agent`, secrets);
    expect(agentScan.filesScanned).toBeGreaterThan(5);
    expect(agentScan.findings).toEqual([]);
    const helperScan = await scanContainer(docker, `keyward-${name}-network-helper`, secrets);
    expect(helperScan.findings).toEqual([]);
    const holderScan = await scanContainer(docker, `keyward-${name}-agent-network`, secrets);
    expect(holderScan.findings).toEqual([]);
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
    expect(state.exports).toEqual(plan.sidecars[0]?.exports);
    expect(state.requests).toEqual([]);
    expect(JSON.stringify(state.metadata)).not.toContain(rawCredential);
    // The stored record is the v2 plan without a secret value, with requests and exports.
    const labels = (await docker.getContainer(`keyward-${name}-agent`).inspect()).Config.Labels ?? {};
    const record = JSON.parse(labels['keyward.dev/instance-record'] ?? '{}');
    expect(record.version).toBe(2);
    expect(record.plan.specificationVersion).toBe('v2');
    expect(record.plan.sidecars[0].exports).toEqual(plan.sidecars[0]?.exports);
    expect(record.plan.sidecars[0].requests).toEqual([]);
    for (const secret of plan.secrets) expect(JSON.stringify(labels)).not.toContain(secret.value);
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

  it('rotateSecrets keeps, adds and removes credentials; everything else about the agent stays', async () => {
    const agentName = `keyward-${name}-agent`;
    await upstream.clear();
    expect((await proxiedRequest('DEMO')).status).toBe(200);
    expect((await proxiedRequest('LEGACY')).status).toBe(200);
    const before = await provider.get(name);
    const agentBefore = await docker.getContainer(agentName).inspect();
    const helperBefore = await docker.getContainer(`keyward-${name}-network-helper`).inspect();
    const request = await tokenizerRotation(provider, name, parseInstanceSpec(before.redactedSpec), {
      credentials: [
        { name: 'demo', secret: '' },
        {
          name: 'added',
          secret: addedCredential,
          allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`],
        },
      ],
    });
    const events: ProgressEventV2[] = [];
    const after = await provider.rotateSecrets(name, request, { onProgress: (event) => events.push(event) });
    expect(after.state).toBe('running');
    expect(after.agentUrl).toBe(before.agentUrl);
    console.log(stepDurations(events));
    expect(events.some((event) => event.step === 'cleanup:previous' && event.status === 'succeeded')).toBe(
      true,
    );

    // Kept and added credentials work through the proxy; the removed one is gone from the agent.
    await upstream.clear();
    expect((await proxiedRequest('DEMO')).status).toBe(200);
    expect((await proxiedRequest('ADDED')).status).toBe(200);
    const received = await upstream.received();
    expect(received.map((entry) => entry.headers['authorization'])).toEqual([
      `Bearer ${rawCredential}`,
      `Bearer ${addedCredential}`,
    ]);
    const agentAfter = await docker.getContainer(agentName).inspect();
    const envNames = (agentAfter.Config.Env ?? []).map((entry) => entry.split('=')[0]);
    expect(envNames).not.toContain('TOKENIZER_CRED_LEGACY');
    expect(envNames).toContain('TOKENIZER_CRED_ADDED');
    // Image, port, the agent's own env and the helper are unchanged.
    expect(agentAfter.Id).not.toBe(agentBefore.Id);
    expect(agentAfter.Config.Image).toBe(agentBefore.Config.Image);
    expect(agentAfter.Config.Env).toContain('AGENT_MODE=test');
    expect((await docker.getContainer(`keyward-${name}-network-helper`).inspect()).Id).toBe(helperBefore.Id);
    // Old containers and volumes are gone; the state reads back the kept open key.
    const names = (
      await docker.listContainers({ all: true, filters: { label: [`keyward.dev/instance=${name}`] } })
    ).map((container) => container.Names[0]);
    expect(names.filter((containerName) => containerName?.includes('previous'))).toEqual([]);
    expect((await provider.readSidecarState(name, 'tokenizer')).secrets['tokenizer-open-key']).toBe(
      openKey(),
    );
    const afterRotation = await tokenizerSelfTest(provider, name, {
      credential: 'added',
      allowedUrl: `https://${demoUpstreamHost}:${demoUpstreamPort}/`,
    });
    expect(afterRotation.filter((check) => !check.passed)).toEqual([]);
  });

  it('after rotation the agent, its env, filesystem and every argv still hold no raw credential nor the open key', async () => {
    const secrets = { rawCredential, legacyCredential, addedCredential, openKey: openKey() };
    const agentScan = await scanContainer(docker, `keyward-${name}-agent`, secrets);
    expect(agentScan.findings).toEqual([]);
    expect(await scanHostCommandLines(secrets)).toEqual([]);
  });

  it('a rotation that fails midway leaves the old credentials working', async () => {
    const faults = faultInjectingDocker(docker);
    const faulty = createLocalProvider({
      docker: faults.docker,
      lockDirectory: join(tmpdir(), `keyward-locks-${name}`),
    });
    const request = await tokenizerRotation(
      faulty,
      name,
      parseInstanceSpec((await faulty.get(name)).redactedSpec),
      {
        credentials: [
          {
            name: 'demo',
            secret: `never-${randomBytes(8).toString('hex')}`,
            allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`],
          },
        ],
      },
    );
    faults.failOn(`start keyward-${name}-agent`);
    await expect(faulty.rotateSecrets(name, request)).rejects.toMatchObject({
      code: 'ROTATION_FAILED',
      details: { step: 'container.start:agent' },
    });
    const detail = await provider.get(name);
    expect(detail.state).toBe('running');
    await upstream.clear();
    expect((await proxiedRequest('DEMO')).status).toBe(200);
    expect((await proxiedRequest('ADDED')).status).toBe(200);
    expect((await upstream.received())[0]?.headers['authorization']).toBe(`Bearer ${rawCredential}`);
    const names = (
      await docker.listContainers({ all: true, filters: { label: [`keyward.dev/instance=${name}`] } })
    ).map((container) => container.Names[0]);
    expect(names.filter((containerName) => containerName?.includes('previous'))).toEqual([]);
  });

  it('delete removes every labelled object', async () => {
    await provider.delete(name, { removeVolumes: true });
    expect(await remainingObjects(docker, name)).toEqual([]);
    await expect(provider.get(name)).rejects.toMatchObject({ code: 'INSTANCE_NOT_FOUND' });
  });
});
