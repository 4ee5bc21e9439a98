import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { composePlanV2 } from '../composition/compose-plan.js';
import { composeRotationV2 } from '../composition/compose-rotation.js';
import { parseInstanceSpec } from '../instance-spec.js';
import type { SidecarProviderV2 } from '../spec/v2/sidecar-provider-v2.js';
import type { TargetProviderV2 } from '../spec/v2/target-provider-v2.js';
import { createMemoryTargetProvider } from './memory-target-provider.js';
import {
  createMockCredentialConsumerProvider,
  createMockSealingProvider,
  createMockSidecarProvider,
  type MockSidecarConfig,
} from './mock-sidecar-provider.js';
import { checkSidecarProvider, type SidecarConformanceOptions } from './sidecar-conformance.js';
import { checkTargetProvider } from './target-conformance.js';
import { testSidecarProvider, testTargetProvider } from './vitest-suites.js';

const validConfig = { secret: 'raw-credential-1234' };
const invalidConfigs = [
  { label: 'port is a string', config: { port: 'x' } },
  { label: 'unknown field', config: { nope: true } },
];

// The suites as providers run them.
testSidecarProvider({ provider: createMockSidecarProvider(), validConfig: {}, invalidConfigs });
testSidecarProvider({ provider: createMockSealingProvider(), validConfig: {} });
// A sidecar that consumes sealed credentials passes with the provider it requires beside it.
testSidecarProvider({
  provider: createMockCredentialConsumerProvider(),
  validConfig: { apiKey: 'upstream-raw-key-5678' },
  forbiddenValues: ['upstream-raw-key-5678'],
  companions: [{ provider: createMockSealingProvider(), config: {} }],
});

const sidecarForPlans = createMockSidecarProvider();
const planFor = (name: string, target: TargetProviderV2 = createMemoryTargetProvider()) =>
  composePlanV2({
    spec: parseInstanceSpec({
      name,
      target: target.id,
      agent: { image: 'localhost/agent:1', port: 18789, skillsDirectory: '/agent/skills' },
      sidecars: { mock: validConfig },
    }),
    sidecars: { getSidecar: (id) => (id === 'mock' ? sidecarForPlans : undefined) },
    target,
  });
// Two targets that render the same plan for two kinds of runtime.
testTargetProvider({
  createProvider: () => createMemoryTargetProvider({ renderStyle: 'pods' }),
  createPlan: (name) => planFor(name),
});
testTargetProvider({
  createProvider: () => createMemoryTargetProvider({ id: 'memory-compose', renderStyle: 'compose' }),
  createPlan: (name) => planFor(name, createMemoryTargetProvider({ id: 'memory-compose' })),
});

type MockOverrides = Partial<SidecarProviderV2<MockSidecarConfig, { token?: string }>>;

async function violatedRules(
  overrides: MockOverrides,
  forbiddenValues: string[] = [],
  extra: Partial<SidecarConformanceOptions> = {},
) {
  const provider = createMockSidecarProvider(overrides);
  return (
    await checkSidecarProvider({ provider, validConfig, invalidConfigs, forbiddenValues, ...extra })
  ).map((violation) => violation.rule);
}

function withContribution(
  change: (
    contribution: Awaited<ReturnType<ReturnType<typeof createMockSidecarProvider>['contribute']>>,
  ) => unknown,
): MockOverrides {
  const base = createMockSidecarProvider();
  return {
    contribute: async (context, config) => change(await base.contribute(context, config)) as never,
  };
}

describe('sidecar conformance fails when a provider breaks a rule', () => {
  it('passes the well-behaved mock', async () => {
    expect(await violatedRules({})).toEqual([]);
  });

  it('catches a wrong specification version', async () => {
    expect(await violatedRules({ specificationVersion: 'v0' as 'v2' })).toContain(
      'declares specification version v2',
    );
  });

  it('catches a schema that accepts invalid configs', async () => {
    expect(await violatedRules({ configSchema: z.any() as never })).toContain(
      'rejects every invalid config with a message',
    );
  });

  it('catches a raw credential copied into the contribution', async () => {
    const rules = await violatedRules(
      withContribution((contribution) => ({
        ...contribution,
        agentEnv: { ...contribution.agentEnv, DEBUG_COPY: validConfig.secret },
      })),
      [validConfig.secret],
    );
    expect(rules).toContain('keeps raw inputs out of the plan, secrets included');
  });

  it('catches a secret in the redacted config and in exports', async () => {
    expect(
      await violatedRules({ redactConfig: (config) => ({ secret: config.secret ?? null }) }, [
        validConfig.secret,
      ]),
    ).toContain('keeps secret values out of metadata, exports and redacted config');
    expect(
      await violatedRules(
        withContribution((contribution) => ({ ...contribution, exports: { leaked: validConfig.secret } })),
        [validConfig.secret],
      ),
    ).toContain('keeps secret values out of metadata, exports and redacted config');
  });

  it('catches non-plain data and an address the provider made up', async () => {
    const rules = await violatedRules(
      withContribution((contribution) => ({
        ...contribution,
        metadata: { when: new Date(0) as never },
        agentEnv: { MOCK_URL: 'http://mock:4100' },
      })),
    );
    expect(rules).toEqual(
      expect.arrayContaining([
        'contributes plain data (survives a JSON round trip)',
        "uses the target's addresses, never its own",
      ]),
    );
  });

  it('catches an address handed to the agent without a connection', async () => {
    const rules = await violatedRules(
      withContribution((contribution) => ({ ...contribution, connections: [] })),
    );
    expect(rules).toContain('declares a connection for every address it hands the agent');
  });

  it('catches an egress in the v1 shape', async () => {
    const rules = await violatedRules(
      withContribution((contribution) => ({
        ...contribution,
        containers: contribution.containers.map((container) => ({ ...container, egress: 'internet' })),
      })),
    );
    expect(rules).toContain('gives every container an image and a valid egress');
  });

  it('catches a contribution the composer refuses', async () => {
    const rules = await violatedRules(
      withContribution((contribution) => ({
        ...contribution,
        secrets: contribution.secrets.map((secret) => ({
          ...secret,
          agentSafe: false,
          visibleTo: ['agent'],
        })),
      })),
    );
    expect(rules).toContain('composes into a plan in every supported network mode');
  });

  it('catches a self-test that passes when nothing ran', async () => {
    const rules = await violatedRules({
      verification: {
        checks: () => [
          {
            name: 'always-fine',
            description: 'Passes whatever happens.',
            exec: { container: 'agent', command: ['true'] },
            judge: () => ({ passed: true, evidence: 'trust me' }),
          },
        ],
      },
    });
    expect(rules).toContain('its self-test checks are well formed and fail when their command could not run');
  });

  it('catches a request to a provider it does not require', async () => {
    const rules = await violatedRules({
      request: () => [
        { id: 'x', provider: 'sealer', kind: 'sealed-credential', container: 'mock', payload: {} },
      ],
    });
    expect(rules).toContain('asks only providers it requires');
  });

  it('catches a consumer composed without the provider it requires', async () => {
    const violations = await checkSidecarProvider({
      provider: createMockCredentialConsumerProvider(),
      validConfig: { apiKey: 'upstream-raw-key-5678' },
    });
    expect(violations.map((violation) => violation.rule)).toContain(
      'composes into a plan in every supported network mode',
    );
    expect(violations.find((violation) => violation.message.includes('MISSING_DEPENDENCY'))).toBeDefined();
  });

  it('catches a view that leaks a secret or breaks its schema', async () => {
    const leaky = await violatedRules(
      { view: { schema: z.object({ secret: z.string() }), build: () => ({ secret: validConfig.secret }) } },
      [validConfig.secret],
    );
    expect(leaky).toContain('its view matches its schema and holds no secret value');
    const wrong = await violatedRules({
      view: { schema: z.object({ port: z.number() }), build: () => ({}) },
    });
    expect(wrong).toContain('its view matches its schema and holds no secret value');
  });
});

describe('target conformance fails when a target breaks a rule', () => {
  async function violations(change: (target: TargetProviderV2) => TargetProviderV2) {
    return (
      await checkTargetProvider({
        createProvider: () => change(createMemoryTargetProvider()),
        createPlan: (name) => planFor(name),
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

  it('catches a get that leaks a secret value or loses exports', async () => {
    const rules = await violations((target) => ({
      ...target,
      get: async (name) => ({
        ...(await target.get(name)),
        redactedSpec: { name, leaked: validConfig.secret },
      }),
    }));
    expect(rules).toContain(
      'get returns the redacted spec, every planned container and each sidecar with its exports',
    );
    const lost = await violations((target) => ({
      ...target,
      get: async (name) => {
        const detail = await target.get(name);
        return { ...detail, sidecars: detail.sidecars.map((sidecar) => ({ ...sidecar, exports: {} })) };
      },
    }));
    expect(lost).toContain(
      'get returns the redacted spec, every planned container and each sidecar with its exports',
    );
  });

  it('catches a runtime that is not available', async () => {
    const rules = await violations((target) => ({
      ...target,
      detect: async () => ({ available: false, reason: 'no socket' }),
    }));
    expect(rules).toContain('detects its runtime and says which strategy found it');
  });

  it('catches an address that is not host:port', async () => {
    const rules = await violations((target) => ({ ...target, addressOf: () => 'http://somewhere' }));
    expect(rules).toContain(
      'addressOf gives a host:port for every connection of the plan, the same each time',
    );
  });

  it('catches an exec that runs in a container the instance does not have', async () => {
    const rules = await violations((target) => ({
      ...target,
      exec: async () => ({ exitCode: 0, stdout: '', stderr: '', timedOut: false }),
    }));
    expect(rules).toContain('exec runs in the agent, and refuses an unknown container');
  });
});

describe('in-memory target', () => {
  it('rolls back a failed apply', async () => {
    const target = createMemoryTargetProvider({
      beforeStep: (step) => {
        if (step === 'container.start:agent') throw new Error('injected');
      },
    });
    await expect(target.apply(await planFor('rollback', target))).rejects.toMatchObject({
      code: 'DEPLOY_FAILED',
    });
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
    const plan = await planFor('rotating', target);
    await target.apply(plan);
    const request = await composeRotationV2({
      spec: parseInstanceSpec(plan.redactedSpec),
      providerId: 'mock',
      change: {},
      sidecars: { getSidecar: (id) => (id === 'mock' ? sidecarForPlans : undefined) },
      target,
      readState: (id) => target.readSidecarState('rotating', id),
    });
    const before = target.inspect('rotating');
    await expect(target.rotateSecrets('rotating', request)).rejects.toMatchObject({
      code: 'ROTATION_FAILED',
    });
    expect(target.inspect('rotating')).toEqual(before);
    failRotation = false;
    await target.rotateSecrets('rotating', request);
    const agent = target.inspect('rotating')?.containers[0];
    expect(target.inspect('rotating')?.secrets.map((secret) => secret.name)).toEqual(['mock-agent-token']);
    expect(agent?.secretMounts.map((mount) => mount.secret)).toEqual(['mock-agent-token']);
  });

  it('renders one plan as plain data for two kinds of runtime', async () => {
    const sealer = createMockSealingProvider();
    const gateway = createMockCredentialConsumerProvider();
    const spec = parseInstanceSpec({
      name: 'chain',
      target: 'memory',
      agent: { image: 'localhost/agent:1', port: 18789 },
      sidecars: { gateway: { apiKey: 'upstream-raw-key-5678' }, sealer: {} },
    });
    const pods = createMemoryTargetProvider({ renderStyle: 'pods' });
    const compose = createMemoryTargetProvider({ renderStyle: 'compose' });
    const plan = await composePlanV2({
      spec,
      sidecars: { getSidecar: (id) => [sealer, gateway].find((provider) => provider.id === id) },
      target: pods,
    });
    expect(pods.renderData(plan)).toMatchInlineSnapshot(`
      {
        "pods": [
          {
            "containers": [
              "agent",
            ],
            "name": "chain-agent",
          },
          {
            "containers": [
              "sealer",
              "gateway",
            ],
            "name": "chain-egress",
          },
        ],
        "policies": [
          {
            "destinations": [],
            "egressTo": [
              {
                "pod": "chain-egress",
                "port": 4400,
              },
              {
                "pod": "chain-egress",
                "port": 4300,
              },
            ],
            "internet": false,
            "pod": "chain-agent",
          },
          {
            "destinations": [],
            "egressTo": [],
            "internet": true,
            "pod": "chain-egress",
          },
        ],
        "secrets": [
          {
            "mountedInto": [
              "sealer",
            ],
            "name": "chain-sealer-key",
          },
          {
            "mountedInto": [
              "gateway",
            ],
            "name": "chain-sealer-for-gateway-upstream",
          },
        ],
      }
    `);
    expect(compose.renderData(plan)).toMatchInlineSnapshot(`
      {
        "firewall": [
          {
            "allow": "chain-agent -> chain-gateway:4400",
          },
          {
            "allow": "chain-agent -> chain-sealer:4300",
          },
          {
            "allow": "chain-gateway -> chain-sealer:4300",
          },
        ],
        "services": [
          {
            "allowedEgress": "none",
            "dependsOn": [
              "chain-sealer",
              "chain-gateway",
            ],
            "name": "chain-agent",
            "networks": [
              "internal",
            ],
          },
          {
            "allowedEgress": "internet",
            "dependsOn": [],
            "name": "chain-sealer",
            "networks": [
              "internal",
              "egress",
            ],
          },
          {
            "allowedEgress": "none",
            "dependsOn": [
              "chain-sealer",
            ],
            "name": "chain-gateway",
            "networks": [
              "internal",
            ],
          },
        ],
      }
    `);
    expect(JSON.stringify([pods.renderData(plan), compose.renderData(plan)])).not.toContain(
      'upstream-raw-key-5678',
    );
  });
});
