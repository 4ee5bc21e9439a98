import {
  composePlanV2,
  composeRotationV2,
  type DeploymentPlanV2,
  type InstanceSpec,
  parseInstanceSpec,
  type ReceivedRequestV2,
  type SidecarContextV2,
  type SidecarLookupV2,
  type SidecarStateV2,
} from '@keyward/core';
import {
  createMemoryTargetProvider,
  createMockCredentialConsumerProvider,
  createMockSealingProvider,
  createMockSidecarProvider,
  createSeededRandomBytes,
} from '@keyward/core/testing';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { storePlan } from '../src/instance-record.js';
import { affectedContainerNames, rotatedPlan } from '../src/rotated-plan.js';
import { compositionTarget, counterBytes } from './plan-fixtures.js';

/** Composes, stores in core's in-memory target (for the sidecar states) and composes a rotation. */
async function rotation(spec: InstanceSpec, sidecars: SidecarLookupV2, providerId: string, change: unknown) {
  const plan = await composePlanV2({ spec, sidecars, target: compositionTarget, randomBytes: counterBytes });
  const memory = createMemoryTargetProvider();
  await memory.apply(plan);
  const request = await composeRotationV2({
    spec,
    providerId,
    change,
    sidecars,
    target: compositionTarget,
    readState: (id) => memory.readSidecarState(spec.name, id),
    randomBytes: createSeededRandomBytes(77),
  });
  const current = storePlan(plan);
  const next = rotatedPlan(current, request);
  return { plan, request, current, next };
}

function agentOf(plan: Pick<DeploymentPlanV2, 'containers'>) {
  const agent = plan.containers.find((container) => container.role === 'agent');
  if (!agent) throw new Error('no agent');
  return agent;
}

describe('rotatedPlan', () => {
  it('replaces one sidecar’s containers, secrets, agent env and files; keeps the rest of the agent and other sidecars', async () => {
    const mock = createMockSidecarProvider();
    const other = createMockSidecarProvider({ id: 'other' });
    const spec = parseInstanceSpec({
      name: 'rot',
      target: 'local',
      agent: { image: 'agent:1', port: 18000, skillsDirectory: '/skills', env: { KEEP_ME: 'yes' } },
      sidecars: { mock: { secret: 'first-secret-value' }, other: { port: 4200 } },
    });
    const lookup = {
      getSidecar: (id: string) => (id === 'mock' ? mock : id === 'other' ? other : undefined),
    };
    const { plan, request, current, next } = await rotation(spec, lookup, 'mock', {});
    expect(request.parts.map((part) => part.providerId)).toEqual(['mock']);
    const before = agentOf(plan);
    const after = agentOf(next);
    expect(after.image).toBe('agent:1');
    expect(after.ports).toEqual(before.ports);
    expect(after.env['KEEP_ME']).toBe('yes');
    expect(after.env['OTHER_URL']).toBe(before.env['OTHER_URL']);
    expect(after.secretMounts.map((mount) => mount.secret).sort()).toEqual([
      'mock-agent-token',
      'other-agent-token',
    ]);
    expect(next.containers.find((container) => container.name === 'other')).toEqual(
      plan.containers.find((container) => container.name === 'other'),
    );
    // No value enters the stored plan.
    const newToken = request.parts[0]?.secrets.find((secret) => secret.name === 'mock-agent-token')?.value;
    expect(newToken).toBeDefined();
    expect(JSON.stringify(next)).not.toContain(newToken);
    expect([...affectedContainerNames(current, next, new Set(['mock']))].sort()).toEqual(['agent', 'mock']);
  });

  it('applies a two-part rotation: the rotated provider and a dependent that followed its exports', async () => {
    // `alpha` exports its port; a rotation moves it, and `beta` (which requires alpha) refreshes.
    const alphaBase = createMockSidecarProvider({ id: 'alpha' });
    const alpha = createMockSidecarProvider({
      id: 'alpha',
      rotation: {
        // The mock's change type is `{ token? }`; this one moves the port.
        changeSchema: z.object({ port: z.number() }).strict() as never,
        rotate: (context, _state, change) =>
          alphaBase.contribute(context, {
            port: (change as unknown as { port: number }).port,
            image: 'localhost/keyward-mock-sidecar:test',
          }),
        nextRedactedConfig: (saved) => saved,
      },
    });
    const betaBase = createMockSidecarProvider({ id: 'beta' });
    const betaFrom = (context: Parameters<typeof betaBase.contribute>[0]) => {
      const endpoint = context.dependencies['alpha']?.exports['endpoint'] as { port: number };
      return betaBase.contribute(context, {
        port: 4500,
        image: `localhost/keyward-mock-sidecar:alpha-${endpoint.port}`,
      });
    };
    const beta = createMockSidecarProvider({
      id: 'beta',
      requires: [{ provider: 'alpha' }],
      contribute: betaFrom,
      rotation: {
        changeSchema: z.object({}).strict(),
        rotate: (context) => betaFrom(context),
        refresh: (context) => betaFrom(context),
      },
    });
    const spec = parseInstanceSpec({
      name: 'chain',
      target: 'local',
      agent: { image: 'agent:1', port: 18000, skillsDirectory: '/skills' },
      sidecars: { alpha: {}, beta: { port: 4500 } },
    });
    const lookup = {
      getSidecar: (id: string) => (id === 'alpha' ? alpha : id === 'beta' ? beta : undefined),
    };
    const { request, current, next } = await rotation(spec, lookup, 'alpha', { port: 4111 });
    expect(request.parts.map((part) => part.providerId)).toEqual(['alpha', 'beta']);
    expect(next.containers.find((container) => container.name === 'beta')?.image).toBe(
      'localhost/keyward-mock-sidecar:alpha-4111',
    );
    expect(next.sidecars.find((sidecar) => sidecar.providerId === 'alpha')?.exports).toEqual({
      endpoint: { container: 'alpha', port: 4111 },
    });
    expect(agentOf(next).env['ALPHA_URL']).toBe('http://localhost:4111');
    expect(next.connections).toEqual([
      { from: 'agent', to: 'alpha', port: 4111 },
      { from: 'agent', to: 'beta', port: 4500 },
    ]);
    expect(agentOf(next).env['BETA_URL']).toBe('http://localhost:4500');
    expect([...affectedContainerNames(current, next, new Set(['alpha', 'beta']))].sort()).toEqual([
      'agent',
      'alpha',
      'beta',
    ]);
  });

  it('keeps a secret a provider made for another sidecar’s container mounted there, and replaces that container', async () => {
    const sealerBase = createMockSealingProvider();
    const sealer = createMockSealingProvider({
      rotation: {
        changeSchema: z.object({}).strict(),
        // A new sealing key; what it sealed for earlier requests is kept (the raw value is gone).
        rotate: async (context: SidecarContextV2, state: SidecarStateV2) => {
          const fresh = await sealerBase.contribute(
            { ...context, requests: [] },
            { port: 4300, image: 'localhost/keyward-mock-sealer:test' },
          );
          const answered = (state.requests ?? []).map((received: ReceivedRequestV2) => {
            const name = `sealer-for-${received.from}-upstream`;
            return {
              name,
              value: state.secrets[name] as string,
              visibleTo: [received.container],
              forRequest: received.id,
              delivery: { type: 'env' as const, variable: 'UPSTREAM_SEALED_KEY' },
            };
          });
          return { ...fresh, secrets: [...fresh.secrets, ...answered] };
        },
      } as never,
    });
    const gateway = createMockCredentialConsumerProvider();
    const spec = parseInstanceSpec({
      name: 'sealed',
      target: 'local',
      agent: { image: 'agent:1', port: 18000 },
      sidecars: { sealer: {}, gateway: { apiKey: 'gateway-raw-provider-key' } },
    });
    const lookup = {
      getSidecar: (id: string) => (id === 'sealer' ? sealer : id === 'gateway' ? gateway : undefined),
    };
    const { plan, request, current, next } = await rotation(spec, lookup, 'sealer', {});
    const sealedBefore = plan.secrets.find((secret) => secret.forRequest === 'upstream-key');
    const sealedAfter = request.parts[0]?.secrets.find((secret) => secret.forRequest === 'upstream-key');
    expect(sealedAfter?.value).toBe(sealedBefore?.value);
    const mountsOf = (name: string) =>
      next.containers.find((container) => container.name === name)?.secretMounts.map((mount) => mount.secret);
    expect(mountsOf('gateway')).toEqual(['sealer-for-gateway-upstream']);
    expect(mountsOf('sealer')).toEqual(['sealer-key']);
    expect(mountsOf('agent')).toEqual([]);
    expect([...affectedContainerNames(current, next, new Set(['sealer']))].sort()).toEqual([
      'agent',
      'gateway',
      'sealer',
    ]);
  });

  it('refuses a request whose first part is not the rotated provider, and an unknown provider', async () => {
    const plan = storePlan(
      await composePlanV2({
        spec: parseInstanceSpec({ name: 'bad', target: 'local', agent: { image: 'agent:1', port: 18000 } }),
        sidecars: { getSidecar: () => undefined },
        target: compositionTarget,
      }),
    );
    expect(() => rotatedPlan(plan, { providerId: 'mock', parts: [], redactedSpec: {} })).toThrow(
      /part first/,
    );
    expect(() =>
      rotatedPlan(plan, {
        providerId: 'ghost',
        parts: [
          {
            providerId: 'ghost',
            sidecar: {} as never,
            containers: [],
            secrets: [],
            agentEnv: {},
            agentFiles: [],
          },
        ],
        redactedSpec: {},
      }),
    ).toThrow(/no sidecar "ghost"/);
  });
});
