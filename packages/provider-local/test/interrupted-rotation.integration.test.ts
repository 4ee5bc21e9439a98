import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DeploymentPlanV2, isKeywardError, parseInstanceSpec } from '@keyward/core';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execInContainer } from '../src/container-exec.js';
import { createLocalProvider, type LocalProvider } from '../src/index.js';
import {
  connectToTestRuntime,
  containersOfInstance,
  type DemoUpstream,
  demoUpstreamHost,
  demoUpstreamPort,
  startDemoUpstream,
  uniqueName,
  unusedFileVolumes,
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

// recoverInterrupted on real podman: a rotation stopped at one runtime call after another (the
// fault-injecting client freezes there: nothing the rotation awaits settles again, the
// in-process stand-in for its process being killed), then a fresh provider recovers the
// instance. Before the new agent exists the old containers come back; from then on the new
// ones are kept. Either way every container is under its own name and running, no file volume
// is left unused, and the agent's request through the proxy carries the matching credential.
describe('provider-local on real podman: recovering an interrupted rotation', { timeout: 900_000 }, () => {
  const name = uniqueName('faults-recover');
  const lockDirectory = join(tmpdir(), `keyward-locks-${name}`);
  const upstreamHost = `${demoUpstreamHost}:${demoUpstreamPort}`;
  const agentName = `keyward-${name}-agent`;
  const tokenizerName = `keyward-${name}-tokenizer`;
  const credentials: string[] = [];
  let docker: Docker;
  let provider: LocalProvider;
  let upstream: DemoUpstream;
  let plan: DeploymentPlanV2;
  let inPlace: string;

  const newCredential = () => {
    const credential = `credential-${credentials.length}-${randomBytes(12).toString('hex')}`;
    credentials.push(credential);
    return credential;
  };

  /** The agent's request through the tokenizer with its own sealed credential; what the upstream got. */
  async function agentAuthorization(): Promise<string | undefined> {
    await upstream.clear();
    const result = await execInContainer(docker, agentName, ['node', '-'], {
      stdin: proxiedRequestScript,
      env: [`TARGET_URL=http://${upstreamHost}/v1/check`, 'CREDENTIAL_KEY=DEMO'],
    });
    expect(JSON.parse(result.stdout.trim()), result.stderr).toMatchObject({ status: 200 });
    return (await upstream.received()).at(-1)?.headers['authorization'];
  }

  beforeAll(async () => {
    docker = await connectToTestRuntime();
    await ensureImages(docker);
    const certificates = createUpstreamCertificates();
    upstream = await startDemoUpstream(docker, { image: demoUpstreamImage, certificates, runId: name });
    provider = createLocalProvider({ docker, lockDirectory });
    inPlace = newCredential();
    plan = await tokenizerPlan({
      name,
      egress: 'proxy-only',
      caPem: certificates.caCertificatePem,
      credentials: [{ name: 'demo', secret: inPlace, allowedHosts: [upstreamHost] }],
    });
    await provider.apply(plan);
    await upstream.attachTo(`keyward-${name}-egress`);
  }, 600_000);

  afterAll(async () => {
    await provider?.delete(name, { removeVolumes: true }).catch(() => undefined);
    await upstream?.remove();
    rmSync(lockDirectory, { recursive: true, force: true });
  }, 180_000);

  it('finds nothing to do on a whole instance, and no instance where there is none', async () => {
    await upstream.acceptTokens(credentials);
    expect(await agentAuthorization()).toBe(`Bearer ${inPlace}`);
    expect(await provider.recoverInterrupted(name)).toMatchObject({ outcome: 'none' });
    const missing = await provider.recoverInterrupted(`${name}-absent`).catch((error: unknown) => error);
    expect(isKeywardError(missing, 'INSTANCE_NOT_FOUND')).toBe(true);
  });

  // Where the rotation stops, whether that call reached the runtime, and what recovery makes of it.
  const cases = [
    {
      call: `rename ${agentName}`,
      sent: false,
      outcome: 'restored',
      what: 'the agent stopped, not yet parked',
    },
    {
      call: `createContainer ${tokenizerName}`,
      sent: true,
      outcome: 'restored',
      what: 'a new tokenizer made',
    },
    {
      call: `start ${agentName}`,
      sent: false,
      outcome: 'completed',
      what: 'the new agent made, not started',
    },
    {
      call: new RegExp(`^remove keyward-${name}-[a-z-]+-previous-`),
      sent: true,
      outcome: 'completed',
      what: 'one parked container removed',
    },
  ] as const;
  for (const [index, { call, sent, outcome, what }] of cases.entries()) {
    it(`stopped at "${String(call)}" (${what}): ${outcome}`, async () => {
      const generation = `g${index}`;
      const faults = faultInjectingDocker(docker);
      const rotating = createLocalProvider({
        docker: faults.docker,
        lockDirectory,
        generation: () => generation,
      });
      const secret = newCredential();
      await upstream.acceptTokens(credentials);
      const request = await tokenizerRotation(
        provider,
        name,
        parseInstanceSpec((await provider.get(name)).redactedSpec),
        {
          credentials: [{ name: 'demo', secret, allowedHosts: [upstreamHost] }],
        },
      );
      const frozen = faults.freezeOn(call, { sent });
      // Never settles: the rotation stops at that call.
      void rotating.rotateSecrets(name, request);
      await frozen;
      // The stopped rotation's lock holder is this live process; a killed one's lock would be stale.
      rmSync(join(lockDirectory, `${name}.lock`), { force: true });

      const recovery = await createLocalProvider({ docker, lockDirectory }).recoverInterrupted(name);
      expect(recovery.outcome, recovery.message).toBe(outcome);
      expect(recovery.message).toMatch(outcome === 'restored' ? /previous credentials/ : /new credentials/);

      const after = await containersOfInstance(docker, name);
      expect(
        after.filter((container) => container.name !== `keyward-${name}-${container.component}`),
      ).toEqual([]);
      expect(after.map((container) => container.component).sort()).toEqual([
        'agent',
        'agent-network',
        'network-helper',
        'tokenizer',
      ]);
      expect(after.every((container) => container.state === 'running')).toBe(true);
      expect(await unusedFileVolumes(docker, name)).toEqual([]);
      expect((await provider.get(name)).state).toBe('running');
      if (outcome === 'completed') inPlace = secret;
      expect(await agentAuthorization()).toBe(`Bearer ${inPlace}`);
      // Recovered: a second call finds nothing left to do.
      expect((await provider.recoverInterrupted(name)).outcome).toBe('none');
    });
  }
});
