import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { composePlan, composeRotation } from '../composer.js';
import { parseInstanceSpec } from '../instance-spec.js';
import type { TargetProviderV1 } from '../spec/v1/target-provider-v1.js';
import { createMemoryTargetProvider } from './memory-target-provider.js';
import { createMockSidecarProvider } from './mock-sidecar-provider.js';
import { checkSidecarProvider } from './sidecar-conformance.js';
import { checkTargetProvider } from './target-conformance.js';
import { testSidecarProvider, testTargetProvider } from './vitest-suites.js';

const validConfig = { secret: 'raw-credential-1234' };
const invalidConfigs = [
  { label: 'port is a string', config: { port: 'x' } },
  { label: 'unknown field', config: { nope: true } },
];

// The suites as providers run them.
testSidecarProvider({ provider: createMockSidecarProvider(), validConfig: {}, invalidConfigs });

const sidecarForPlans = createMockSidecarProvider();
const planFor = (name: string) =>
  composePlan({
    spec: parseInstanceSpec({ name, agent: { image: 'localhost/agent:1' }, sidecars: { mock: validConfig } }),
    sidecars: { getSidecar: (id) => (id === 'mock' ? sidecarForPlans : undefined) },
  });
testTargetProvider({ createProvider: () => createMemoryTargetProvider(), createPlan: planFor });

async function violatedRules(
  overrides: Parameters<typeof createMockSidecarProvider>[0],
  forbiddenValues: string[] = [],
) {
  const provider = createMockSidecarProvider(overrides);
  return (await checkSidecarProvider({ provider, validConfig, invalidConfigs, forbiddenValues })).map(
    (violation) => violation.rule,
  );
}

describe('sidecar conformance fails when a provider breaks a rule', () => {
  it('passes the well-behaved mock', async () => {
    expect(await violatedRules({})).toEqual([]);
  });

  it('catches a wrong specification version', async () => {
    expect(await violatedRules({ specificationVersion: 'v0' as 'v1' })).toContain(
      'declares specification version v1',
    );
  });

  it('catches a schema that accepts invalid configs', async () => {
    expect(await violatedRules({ configSchema: z.any() as never })).toContain(
      'rejects every invalid config with a message',
    );
  });

  it('catches a raw credential copied into the contribution', async () => {
    const base = createMockSidecarProvider();
    const rules = await violatedRules(
      {
        contribute: async (context, config) => {
          const contribution = await base.contribute(context, config);
          return { ...contribution, agentEnv: { ...contribution.agentEnv, DEBUG_COPY: config.secret ?? '' } };
        },
      },
      [validConfig.secret],
    );
    expect(rules).toContain('keeps raw inputs out of the contribution');
  });

  it('catches a secret in the redacted config', async () => {
    expect(
      await violatedRules({ redactConfig: (config) => ({ secret: config.secret ?? null }) }, [
        validConfig.secret,
      ]),
    ).toContain('keeps secret values out of metadata and redacted config');
  });

  it('catches non-plain data and a hard-coded address', async () => {
    const base = createMockSidecarProvider();
    const rules = await violatedRules({
      contribute: async (context, config) => {
        const contribution = await base.contribute(context, config);
        return {
          ...contribution,
          metadata: { when: new Date(0) as never },
          agentEnv: { MOCK_URL: 'http://localhost:4100' },
        };
      },
    });
    expect(rules).toEqual(
      expect.arrayContaining([
        'contributes plain data (survives a JSON round trip)',
        'uses the address the plan computed for each network mode',
      ]),
    );
  });

  it('catches a contribution the composer refuses', async () => {
    const base = createMockSidecarProvider();
    const rules = await violatedRules({
      contribute: async (context, config) => {
        const contribution = await base.contribute(context, config);
        return {
          ...contribution,
          secrets: contribution.secrets.map((secret) => ({
            ...secret,
            agentSafe: false,
            visibleTo: ['agent'],
          })),
        };
      },
    });
    expect(rules).toContain('composes into a plan in every supported network mode');
  });
});

describe('target conformance fails when a target breaks a rule', () => {
  async function violations(change: (target: TargetProviderV1) => TargetProviderV1) {
    return (
      await checkTargetProvider({
        createProvider: () => change(createMemoryTargetProvider()),
        createPlan: planFor,
      })
    ).map((violation) => violation.rule);
  }

  it('passes the in-memory target', async () => {
    expect(await violations((target) => target)).toEqual([]);
  });

  it('catches a list that forgets instances', async () => {
    expect(await violations((target) => ({ ...target, list: async () => [] }))).toEqual(
      expect.arrayContaining(['list includes the instance', 'apply is idempotent']),
    );
  });

  it('catches a stop that does nothing', async () => {
    expect(await violations((target) => ({ ...target, stop: async () => undefined }))).toContain(
      'stop, start and restart change the state',
    );
  });

  it('catches an untyped not-found error', async () => {
    const rules = await violations((target) => ({
      ...target,
      get: async (name) => {
        if (name.endsWith('-missing')) throw new Error('no such thing');
        return target.get(name);
      },
    }));
    expect(rules).toContain(
      'get, start, stop, delete and logs of an unknown instance throw INSTANCE_NOT_FOUND',
    );
  });

  it('catches a get that leaks a secret value', async () => {
    const rules = await violations((target) => ({
      ...target,
      get: async (name) => ({
        ...(await target.get(name)),
        redactedSpec: { name, leaked: validConfig.secret },
      }),
    }));
    expect(rules).toContain('get returns the redacted spec and every planned container');
  });

  it('catches a runtime that is not available', async () => {
    const rules = await violations((target) => ({
      ...target,
      detect: async () => ({ available: false, reason: 'no socket' }),
    }));
    expect(rules).toContain('detects its runtime and says which strategy found it');
  });
});

describe('in-memory target', () => {
  it('rolls back a failed apply', async () => {
    const target = createMemoryTargetProvider({
      beforeStep: (step) => {
        if (step === 'container.start:agent') throw new Error('injected');
      },
    });
    await expect(target.apply(await planFor('rollback'))).rejects.toMatchObject({ code: 'DEPLOY_FAILED' });
    expect(await target.list()).toEqual([]);
    expect(target.calls.list).toBe(1);
  });

  it('keeps the old credentials when a rotation fails, and swaps them when it succeeds', async () => {
    let failRotation = true;
    const target = createMemoryTargetProvider({
      beforeStep: (step) => {
        if (failRotation && step === 'rotate.restart:mock') throw new Error('injected');
      },
    });
    const plan = await planFor('rotating');
    await target.apply(plan);
    const spec = parseInstanceSpec(plan.redactedSpec);
    const request = await composeRotation({
      spec,
      provider: sidecarForPlans,
      current: await target.readSidecarState!('rotating', 'mock'),
      change: {},
    });
    const before = target.inspect('rotating');
    await expect(target.rotateSecrets!('rotating', request)).rejects.toMatchObject({
      code: 'ROTATION_FAILED',
    });
    expect(target.inspect('rotating')).toEqual(before);
    failRotation = false;
    await target.rotateSecrets!('rotating', request);
    const agent = target.inspect('rotating')?.containers[0];
    expect(target.inspect('rotating')?.secrets.map((secret) => secret.name)).toEqual(['mock-agent-token']);
    expect(agent?.secretMounts.map((mount) => mount.secret)).toEqual(['mock-agent-token']);
  });
});
