// Plans built from core's mock sidecar providers, run on real podman (their containers run the
// stand-in agent image, see `runnable`): a credential one sidecar seals for another sidecar's
// container, and a rotation whose dependent has to follow.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  composePlanV2,
  composeRotationV2,
  type DeploymentPlanV2,
  parseInstanceSpec,
  type SidecarContextV2,
} from '@keyward/core';
import {
  createMockCredentialConsumerProvider,
  createMockSealingProvider,
  createMockSidecarProvider,
} from '@keyward/core/testing';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { createLocalProvider, type LocalProvider } from '../src/index.js';
import {
  connectToTestRuntime,
  remainingObjects,
  scanContainer,
  scanHostCommandLines,
  testRuntimeKind,
  uniqueName,
} from '../src/testing/index.js';
import { compositionTarget } from './plan-fixtures.js';
import { agentStandInImage, ensureImages, runnable } from './support/integration-environment.js';

/** podman, or docker under `pnpm test:docker` (KEYWARD_TEST_RUNTIME). */
const runtime = testRuntimeKind();

let docker: Docker;

beforeAll(async () => {
  docker = await connectToTestRuntime();
  await ensureImages(docker);
});

describe('a credential sealed by one sidecar for another sidecar’s container (proxy-only)', () => {
  const name = uniqueName('it-sealed');
  const rawKey = `raw-gateway-key-${Date.now().toString(36)}`;
  let provider: LocalProvider;
  let plan: DeploymentPlanV2;

  beforeAll(async () => {
    provider = createLocalProvider({ docker, lockDirectory: join(tmpdir(), `keyward-locks-${name}`) });
    const sealer = runnable(createMockSealingProvider());
    const gateway = runnable(createMockCredentialConsumerProvider());
    plan = await composePlanV2({
      spec: parseInstanceSpec({
        name,
        target: 'local',
        agent: { image: agentStandInImage, port: 18789 },
        sidecars: { sealer: {}, gateway: { apiKey: rawKey } },
      }),
      sidecars: { getSidecar: (id) => (id === 'sealer' ? sealer : id === 'gateway' ? gateway : undefined) },
      target: compositionTarget,
    });
  });

  afterAll(async () => {
    await provider?.delete(name, { removeVolumes: true }).catch(() => undefined);
  });

  it('mounts the sealed credential into the consumer’s container only; the raw key is nowhere', async () => {
    const detail = await provider.apply(plan);
    expect(detail.state).toBe('running');
    expect(detail.sidecars.map((sidecar) => sidecar.providerId)).toEqual(['sealer', 'gateway']);
    expect(detail.sidecars[0]?.exports).toEqual({ proxy: { container: 'sealer', port: 4300 } });
    const sealed = plan.secrets.find((secret) => secret.forRequest === 'upstream-key')?.value as string;
    const sealingKey = plan.secrets.find((secret) => secret.name === 'sealer-key')?.value as string;
    expect(sealed).toMatch(/^sealed\./);
    const gatewayEnv = (await docker.getContainer(`keyward-${name}-gateway`).inspect()).Config.Env ?? [];
    expect(gatewayEnv).toContain(`UPSTREAM_SEALED_KEY=${sealed}`);
    const secrets = { sealed, sealingKey, rawKey };
    const findings = async (container: string) =>
      (await scanContainer(docker, `keyward-${name}-${container}`, secrets)).findings.map(
        (finding) => finding.secret,
      );
    expect(await findings('agent')).toEqual([]);
    expect(await findings('network-helper')).toEqual([]);
    expect([...new Set(await findings('sealer'))]).toEqual(['sealingKey']);
    expect([...new Set(await findings('gateway'))]).toEqual(['sealed']);
    expect(await scanHostCommandLines(secrets)).toEqual([]);
    // The sealer reads back its answer for the gateway's request, and the request itself.
    const state = await provider.readSidecarState(name, 'sealer');
    expect(state.secrets[`sealer-for-gateway-upstream`]).toBe(sealed);
    expect(state.requests).toEqual([
      {
        id: 'upstream-key',
        provider: 'sealer',
        kind: 'sealed-credential',
        container: 'gateway',
        from: 'gateway',
      },
    ]);
  });

  it('delete removes every labelled object', async () => {
    await provider.delete(name, { removeVolumes: true });
    expect(await remainingObjects(docker, name)).toEqual([]);
  });
});

describe(`a two-part rotation on real ${runtime}: a dependent follows the rotated provider’s exports`, () => {
  const name = uniqueName('it-chain');
  let provider: LocalProvider;
  // alpha exports a generation; a rotation raises it, and beta (which requires alpha) refreshes.
  const alphaBase = createMockSidecarProvider({ id: 'alpha' });
  const alphaContribution = async (context: SidecarContextV2, generation: number, port = 4100) => {
    const contribution = await alphaBase.contribute(context, { port, image: 'unused' });
    return { ...contribution, exports: { ...contribution.exports, generation } };
  };
  const alpha = runnable(
    createMockSidecarProvider({
      id: 'alpha',
      contribute: (context) => alphaContribution(context, 1),
      rotation: {
        // The mock's change type is `{ token? }`; this one sets the generation (and maybe the port).
        changeSchema: z.object({ generation: z.number(), port: z.number().optional() }).strict() as never,
        rotate: (context, _state, change) => {
          const { generation, port } = change as unknown as { generation: number; port?: number };
          return alphaContribution(context, generation, port);
        },
        nextRedactedConfig: (saved) => saved,
      },
    }),
  );
  const betaBase = createMockSidecarProvider({ id: 'beta' });
  const betaFrom = (context: SidecarContextV2) => {
    const generation = context.dependencies['alpha']?.exports['generation'] as number;
    return betaBase.contribute(context, { port: 4500, secret: `beta-secret-${generation}`, image: 'unused' });
  };
  const beta = runnable(
    createMockSidecarProvider({
      id: 'beta',
      requires: [{ provider: 'alpha' }],
      contribute: betaFrom,
      rotation: {
        changeSchema: z.object({}).strict(),
        rotate: (context) => betaFrom(context),
        refresh: (context) => betaFrom(context),
      },
    }),
  );
  const lookup = { getSidecar: (id: string) => (id === 'alpha' ? alpha : id === 'beta' ? beta : undefined) };
  const rotation = async (change: unknown) =>
    composeRotationV2({
      spec: parseInstanceSpec((await provider.get(name)).redactedSpec),
      providerId: 'alpha',
      change,
      sidecars: lookup,
      target: compositionTarget,
      readState: (id) => provider.readSidecarState(name, id),
    });
  const ids = async () =>
    Object.fromEntries(
      await Promise.all(
        ['agent', 'alpha', 'beta', 'network-helper', 'agent-network'].map(async (container) => [
          container,
          (await docker.getContainer(`keyward-${name}-${container}`).inspect()).Id,
        ]),
      ),
    );

  beforeAll(() => {
    provider = createLocalProvider({ docker, lockDirectory: join(tmpdir(), `keyward-locks-${name}`) });
  });

  afterAll(async () => {
    await provider?.delete(name, { removeVolumes: true }).catch(() => undefined);
  });

  it('replaces both sidecars and the agent, all or none', async () => {
    const spec = parseInstanceSpec({
      name,
      target: 'local',
      agent: { image: agentStandInImage, port: 18789, skillsDirectory: '/home/node/skills' },
      sidecars: { alpha: {}, beta: { port: 4500 } },
    });
    const plan = await composePlanV2({ spec, sidecars: lookup, target: compositionTarget });
    expect((await provider.apply(plan)).state).toBe('running');
    expect((await provider.readSidecarState(name, 'beta')).secrets['beta-secret']).toBe('beta-secret-1');
    const request = await rotation({ generation: 2 });
    expect(request.parts.map((part) => part.providerId)).toEqual(['alpha', 'beta']);
    const before = await ids();
    const detail = await provider.rotateSecrets(name, request);
    expect(detail.state).toBe('running');
    const after = await ids();
    expect(after['agent']).not.toBe(before['agent']);
    expect(after['alpha']).not.toBe(before['alpha']);
    expect(after['beta']).not.toBe(before['beta']);
    expect(after['network-helper']).toBe(before['network-helper']);
    expect(after['agent-network']).toBe(before['agent-network']);
    expect(detail.sidecars.find((sidecar) => sidecar.providerId === 'alpha')?.exports).toEqual({
      endpoint: { container: 'alpha', port: 4100 },
      generation: 2,
    });
    // beta's secret followed alpha's new generation, in beta's own volume.
    expect((await provider.readSidecarState(name, 'beta')).secrets['beta-secret']).toBe('beta-secret-2');
    // The agent still reaches both through its relays.
    const reach = await provider.exec(name, {
      container: 'agent',
      command: [
        'node',
        '-e',
        "Promise.all([4100,4500].map(p=>fetch('http://localhost:'+p+'/health').then(r=>r.status))).then(s=>console.log(s.join(',')))",
      ],
    });
    expect(reach.stdout.trim()).toBe('200,200');
  });

  it('refuses a rotation that would change the agent’s allowed connections, and changes nothing', async () => {
    const before = await ids();
    const request = await rotation({ generation: 3, port: 4111 });
    await expect(provider.rotateSecrets(name, request)).rejects.toMatchObject({ code: 'ROTATION_FAILED' });
    expect(await ids()).toEqual(before);
    expect((await provider.get(name)).state).toBe('running');
  });
});
