import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { isKeywardError, type KeywardErrorCode } from '../errors/keyward-error.js';
import { parseInstanceSpec } from '../instance-spec.js';
import { labelKeys } from '../labels.js';
import { SecretRedactor, secretRedactor } from '../redaction.js';
import type { SidecarContributionV2 } from '../spec/v2/contribution-v2.js';
import type { SidecarProviderV2 } from '../spec/v2/sidecar-provider-v2.js';
import { createMemoryTargetProvider } from '../testing/memory-target-provider.js';
import {
  createMockCredentialConsumerProvider,
  createMockSealingProvider,
  createMockSidecarProvider,
  createSeededRandomBytes,
} from '../testing/mock-sidecar-provider.js';
import { composePlanV2, type TargetForComposition } from './compose-plan.js';
import { composeRotationV2 } from './compose-rotation.js';

// biome-ignore lint/suspicious/noExplicitAny: providers of any config.
function lookup(...providers: SidecarProviderV2<any, any>[]) {
  return { getSidecar: (id: string) => providers.find((provider) => provider.id === id) };
}

const target = createMemoryTargetProvider();

function spec(sidecars: Record<string, unknown>, egress: 'proxy-only' | 'open' = 'proxy-only', extra = {}) {
  return parseInstanceSpec({
    name: 'demo',
    target: 'memory',
    agent: {
      image: 'localhost/agent:1',
      port: 18789,
      env: { LOG_LEVEL: 'info' },
      skillsDirectory: '/agent/skills',
    },
    network: { egress },
    sidecars,
    ...extra,
  });
}

function withContribution(id: string, change: (base: SidecarContributionV2) => SidecarContributionV2) {
  const base = createMockSidecarProvider({ id });
  return createMockSidecarProvider({
    id,
    contribute: async (context, config) => change(await base.contribute(context, config)),
  });
}

async function expectCode(promise: Promise<unknown>, code: KeywardErrorCode, ...mentions: string[]) {
  try {
    await promise;
  } catch (error) {
    expect(isKeywardError(error) ? error.code : error).toBe(code);
    for (const mention of mentions) expect((error as Error).message).toContain(mention);
    return;
  }
  throw new Error(`expected ${code}`);
}

function dependent(id: string, requires: string, optional = false) {
  const base = createMockSidecarProvider({ id });
  return createMockSidecarProvider({
    id,
    requires: [{ provider: requires, optional }],
    contribute: async (context, config) => {
      const contribution = await base.contribute(context, config);
      const endpoint = context.dependencies[requires]?.exports['endpoint'] as
        | { container: string; port: number }
        | undefined;
      return {
        ...contribution,
        containers: contribution.containers.map((container) => ({
          ...container,
          env: {
            ...container.env,
            UPSTREAM: endpoint ? context.addressOf(id, endpoint.container, endpoint.port) : 'none',
          },
        })),
        connections: [
          ...(contribution.connections ?? []),
          ...(endpoint ? [{ from: id, to: endpoint.container, port: endpoint.port }] : []),
        ],
      };
    },
  });
}

describe('composePlanV2', () => {
  it('is deterministic: the same input and random source give the same plan', async () => {
    const providers = lookup(
      createMockSidecarProvider({ id: 'alpha' }),
      createMockSidecarProvider({ id: 'beta' }),
    );
    const input = spec({ beta: { port: 4200 }, alpha: { secret: 'super-secret-value' } });
    const first = await composePlanV2({
      spec: input,
      sidecars: providers,
      target,
      randomBytes: createSeededRandomBytes(9),
    });
    const second = await composePlanV2({
      spec: input,
      sidecars: providers,
      target,
      randomBytes: createSeededRandomBytes(9),
    });
    expect(second).toEqual(first);
    expect(first.containers.map((container) => container.name)).toEqual(['agent', 'alpha', 'beta']);
  });

  it('asks the target for every address, per network mode, and carries no runtime names', async () => {
    const providers = lookup(createMockSidecarProvider());
    const isolated = await composePlanV2({ spec: spec({ mock: {} }), sidecars: providers, target });
    const open = await composePlanV2({ spec: spec({ mock: {} }, 'open'), sidecars: providers, target });
    expect(isolated.containers[0]?.env['MOCK_URL']).toBe('http://demo-mock.memory.invalid:4100');
    expect(open.containers[0]?.env['MOCK_URL']).toBe('http://localhost:4100');
    expect(isolated.containers[0]?.egress).toEqual({ type: 'none' });
    expect(open.containers[0]?.egress).toEqual({ type: 'internet' });
    expect(isolated.connections).toEqual([{ from: 'agent', to: 'mock', port: 4100 }]);
    expect(isolated.ingress).toEqual([{ container: 'agent', port: 18789 }]);
    expect(open.warnings.map((warning) => warning.code)).toContain('OPEN_EGRESS');
    expect(JSON.stringify(isolated)).not.toMatch(/runtimeName|keyward-demo-/);
  });

  it('labels every container and secret with the instance and provider', async () => {
    const plan = await composePlanV2({
      spec: spec({ mock: { secret: 'super-secret-value' } }),
      sidecars: lookup(createMockSidecarProvider()),
      target,
    });
    for (const object of [...plan.containers, ...plan.secrets]) {
      expect(object.labels[labelKeys.managedBy]).toBe('keyward');
      expect(object.labels[labelKeys.instance]).toBe('demo');
      expect(object.labels[labelKeys.provider]).toMatch(/^(agent|mock)$/);
    }
  });

  it('routes secrets only to the containers they are visible to, and redacts into the given redactor only', async () => {
    const redactor = new SecretRedactor();
    const globalSize = secretRedactor.size;
    const plan = await composePlanV2({
      spec: spec({ mock: { secret: 'super-secret-value' } }),
      sidecars: lookup(createMockSidecarProvider()),
      target,
      redactor,
    });
    const [agent, mock] = plan.containers;
    expect(agent?.secretMounts.map((mount) => mount.secret)).toEqual(['mock-agent-token']);
    expect(mock?.secretMounts.map((mount) => mount.secret)).toEqual(['mock-secret']);
    expect(JSON.stringify(plan.redactedSpec)).not.toContain('super-secret-value');
    expect(plan.sidecars[0]?.agentEnvKeys).toEqual(['MOCK_TOKEN', 'MOCK_URL']);
    expect(agent?.files.map((file) => file.path)).toEqual(['/agent/skills/mock/SKILL.md']);
    expect(redactor.has('super-secret-value')).toBe(true);
    expect(secretRedactor.size).toBe(globalSize);
  });

  it('validates target options with the target schema and keeps them in the plan and the redacted spec', async () => {
    const plan = await composePlanV2({
      spec: spec({}, 'proxy-only', { targetOptions: { hostPort: 8080 } }),
      sidecars: lookup(),
      target,
    });
    expect(plan.targetOptions).toEqual({ hostPort: 8080 });
    expect(plan.redactedSpec['targetOptions']).toEqual({ hostPort: 8080 });
    await expectCode(
      composePlanV2({
        spec: spec({}, 'proxy-only', { targetOptions: { namespace: 'x' } }),
        sidecars: lookup(),
        target,
      }),
      'INVALID_INSTANCE_SPEC',
      'targetOptions',
      '"namespace"',
    );
  });

  it('hardens the agent by default: no capabilities, no privilege gain, read-only root and a tmpfs /tmp', async () => {
    const plan = await composePlanV2({ spec: spec({}), sidecars: lookup(), target });
    expect(plan.containers[0]).toMatchObject({
      security: { readOnlyRootFilesystem: true, dropAllCapabilities: true, noNewPrivileges: true },
      tmpfs: ['/tmp'],
    });
    expect(plan.warnings.map((warning) => warning.code)).not.toContain('WRITABLE_AGENT_ROOT');
    const writable = await composePlanV2({
      spec: parseInstanceSpec({
        name: 'demo',
        target: 'memory',
        agent: { image: 'localhost/agent:1', port: 18789, readOnlyRootFilesystem: false },
      }),
      sidecars: lookup(),
      target,
    });
    expect(writable.containers[0]?.security).toEqual({
      readOnlyRootFilesystem: false,
      dropAllCapabilities: true,
      noNewPrivileges: true,
    });
    expect(writable.warnings.map((warning) => warning.code)).toContain('WRITABLE_AGENT_ROOT');
    expect((writable.redactedSpec['agent'] as Record<string, unknown>)['readOnlyRootFilesystem']).toBe(false);
  });

  it('composes in dependency order, hands each provider the exports it requires, and orders starts', async () => {
    // "aaa" sorts first but requires "zzz".
    const plan = await composePlanV2({
      spec: spec({ aaa: { port: 4201 }, zzz: { port: 4202 } }),
      sidecars: lookup(dependent('aaa', 'zzz'), createMockSidecarProvider({ id: 'zzz' })),
      target,
    });
    expect(plan.sidecars.map((sidecar) => sidecar.providerId)).toEqual(['zzz', 'aaa']);
    const aaa = plan.containers.find((container) => container.name === 'aaa');
    expect(aaa?.env['UPSTREAM']).toBe('localhost:4202');
    expect(aaa?.startAfter).toEqual(['zzz']);
    expect(plan.containers[0]?.startAfter).toEqual(['zzz', 'aaa']);
    expect(plan.sidecars[1]?.requires).toEqual(['zzz']);
    expect(plan.connections).toContainEqual({ from: 'aaa', to: 'zzz', port: 4202 });
  });

  it('honours an optional requirement only when the provider is present', async () => {
    const plan = await composePlanV2({
      spec: spec({ aaa: {} }),
      sidecars: lookup(dependent('aaa', 'zzz', true)),
      target,
    });
    expect(plan.containers.find((container) => container.name === 'aaa')?.env['UPSTREAM']).toBe('none');
    expect(plan.sidecars[0]?.requires).toEqual([]);
  });

  it('names a missing required provider and a dependency cycle', async () => {
    await expectCode(
      composePlanV2({ spec: spec({ aaa: {} }), sidecars: lookup(dependent('aaa', 'zzz')), target }),
      'MISSING_DEPENDENCY',
      '"aaa" requires sidecar "zzz"',
    );
    await expectCode(
      composePlanV2({
        spec: spec({ aaa: { port: 4201 }, bbb: { port: 4202 } }),
        sidecars: lookup(dependent('aaa', 'bbb'), dependent('bbb', 'aaa')),
        target,
      }),
      'DEPENDENCY_CYCLE',
      'aaa → bbb → aaa',
    );
  });

  it('lets a sidecar ask another for a sealed credential that only its own container sees', async () => {
    const raw = 'upstream-raw-key-5678';
    const plan = await composePlanV2({
      spec: spec({ gateway: { apiKey: raw }, sealer: {} }),
      sidecars: lookup(createMockCredentialConsumerProvider(), createMockSealingProvider()),
      target,
    });
    expect(JSON.stringify(plan)).not.toContain(raw);
    const sealed = plan.secrets.find((secret) => secret.forRequest === 'upstream-key');
    expect(sealed).toMatchObject({ providerId: 'sealer', visibleTo: ['gateway'] });
    expect(sealed?.value).toMatch(/^sealed\./);
    const mounts = Object.fromEntries(
      plan.containers.map((container) => [
        container.name,
        container.secretMounts.map((mount) => mount.secret),
      ]),
    );
    expect(mounts).toEqual({
      agent: [],
      sealer: ['sealer-key'],
      gateway: ['sealer-for-gateway-upstream'],
    });
    expect(plan.sidecars.find((sidecar) => sidecar.providerId === 'gateway')?.requests).toEqual([
      { id: 'upstream-key', provider: 'sealer', kind: 'sealed-credential', container: 'gateway' },
    ]);
    expect(plan.containers.find((container) => container.name === 'gateway')?.env['HTTP_PROXY']).toBe(
      'http://localhost:4300',
    );
  });

  it('refuses a request the answering provider does not answer or whose payload it rejects', async () => {
    const noAnswers = createMockSealingProvider({ answers: {} });
    await expectCode(
      composePlanV2({
        spec: spec({ gateway: { apiKey: 'upstream-raw-key-5678' }, sealer: {} }),
        sidecars: lookup(createMockCredentialConsumerProvider(), noAnswers),
        target,
      }),
      'UNSUPPORTED_CAPABILITY',
      '"sealed-credential"',
    );
    const badHost = createMockCredentialConsumerProvider();
    await expectCode(
      composePlanV2({
        spec: spec({ gateway: { apiKey: 'upstream-raw-key-5678', upstreamHost: '' }, sealer: {} }),
        sidecars: lookup(badHost, createMockSealingProvider()),
        target,
      }),
      'INVALID_PROVIDER_CONFIG',
    );
  });

  it('refuses a secret handed to another provider container that did not ask for it', async () => {
    const greedy = withContribution('mock', (base) => ({
      ...base,
      secrets: [
        {
          name: 'handout',
          value: 'handout-value-1',
          visibleTo: ['zzz'],
          forRequest: 'nobody-asked',
          delivery: { type: 'env', variable: 'HANDOUT' },
        },
      ],
    }));
    await expectCode(
      composePlanV2({
        spec: spec({ mock: {}, zzz: { port: 4999 } }),
        sidecars: lookup(greedy, createMockSidecarProvider({ id: 'zzz' })),
        target,
      }),
      'UNKNOWN_SECRET_CONSUMER',
      '"zzz"',
    );
  });

  it('refuses a connection to a provider it does not require, and to an undeclared port', async () => {
    const sneaky = withContribution('mock', (base) => ({
      ...base,
      connections: [...(base.connections ?? []), { from: 'mock', to: 'zzz', port: 4999 }],
    }));
    await expectCode(
      composePlanV2({
        spec: spec({ mock: {}, zzz: { port: 4999 } }),
        sidecars: lookup(sneaky, createMockSidecarProvider({ id: 'zzz' })),
        target,
      }),
      'PROVIDER_CONTRACT_VIOLATION',
      'without requiring it',
    );
    const wrongPort = withContribution('mock', (base) => ({
      ...base,
      connections: [{ from: 'agent', to: 'mock', port: 1 }],
    }));
    await expectCode(
      composePlanV2({ spec: spec({ mock: {} }), sidecars: lookup(wrongPort), target }),
      'PROVIDER_CONTRACT_VIOLATION',
      'does not declare that port',
    );
  });

  it('rejects two sidecars on one port and names both providers', async () => {
    await expectCode(
      composePlanV2({
        spec: spec({ one: { port: 5000 }, two: { port: 5000 } }),
        sidecars: lookup(createMockSidecarProvider({ id: 'one' }), createMockSidecarProvider({ id: 'two' })),
        target,
      }),
      'PORT_CONFLICT',
      'sidecar "one"',
      'sidecar "two"',
      '5000',
    );
  });

  it('rejects a sidecar port that collides with the agent port', async () => {
    await expectCode(
      composePlanV2({
        spec: spec({ mock: { port: 18789 } }),
        sidecars: lookup(createMockSidecarProvider()),
        target,
      }),
      'PORT_CONFLICT',
      'the agent',
    );
  });

  it('rejects a secret visible to an unknown container, naming the provider', async () => {
    const provider = withContribution('mock', (base) => ({
      ...base,
      secrets: [
        {
          name: 'stray',
          value: 'stray-secret-value',
          visibleTo: ['litellm'],
          delivery: { type: 'file', path: '/run/x' },
        },
      ],
    }));
    await expectCode(
      composePlanV2({ spec: spec({ mock: {} }), sidecars: lookup(provider), target }),
      'UNKNOWN_SECRET_CONSUMER',
      '"litellm"',
      '"mock"',
    );
  });

  it('rejects a secret made visible to the agent without being declared agent-safe', async () => {
    const provider = withContribution('mock', (base) => ({
      ...base,
      secrets: [
        {
          name: 'raw',
          value: 'raw-credential-value',
          visibleTo: ['agent'],
          delivery: { type: 'env', variable: 'RAW' },
        },
      ],
    }));
    await expectCode(
      composePlanV2({ spec: spec({ mock: {} }), sidecars: lookup(provider), target }),
      'SECRET_NOT_AGENT_SAFE',
      '"mock"',
      '"raw"',
    );
  });

  it('rejects a secret value placed in a plain field, exports included', async () => {
    for (const place of ['metadata', 'exports'] as const) {
      const provider = withContribution('mock', (base) => ({
        ...base,
        secrets: [
          {
            name: 'key',
            value: 'leaky-secret-value',
            visibleTo: ['mock'],
            delivery: { type: 'file', path: '/run/key' },
          },
        ],
        [place]: { note: 'leaky-secret-value' },
      }));
      await expectCode(
        composePlanV2({ spec: spec({ mock: {} }), sidecars: lookup(provider), target }),
        'SECRET_IN_PLAIN_FIELD',
        place,
      );
    }
  });

  it('rejects two sidecars setting the same agent env variable, or one overriding the spec', async () => {
    const one = withContribution('one', (base) => ({ ...base, agentEnv: { ...base.agentEnv, SHARED: 'a' } }));
    const two = withContribution('two', (base) => ({ ...base, agentEnv: { ...base.agentEnv, SHARED: 'b' } }));
    await expectCode(
      composePlanV2({
        spec: spec({ one: { port: 5001 }, two: { port: 5002 } }),
        sidecars: lookup(one, two),
        target,
      }),
      'ENV_CONFLICT',
      'SHARED',
      '"two"',
    );
    const provider = withContribution('mock', (base) => ({ ...base, agentEnv: { LOG_LEVEL: 'debug' } }));
    await expectCode(
      composePlanV2({ spec: spec({ mock: {} }), sidecars: lookup(provider), target }),
      'ENV_CONFLICT',
      'agent.env',
    );
  });

  it('tells container and secret name clashes apart', async () => {
    const rename = (id: string, port: number) =>
      withContribution(id, (base) => ({
        ...base,
        containers: base.containers.map((container) => ({
          ...container,
          name: 'proxy',
          ports: [{ name: 'http', containerPort: port }],
        })),
        connections: [],
        secrets: [],
        files: [],
        agentEnv: {},
      }));
    await expectCode(
      composePlanV2({
        spec: spec({ one: {}, two: {} }),
        sidecars: lookup(rename('one', 5998), rename('two', 5999)),
        target,
      }),
      'CONTAINER_NAME_CONFLICT',
      '"one"',
      '"two"',
    );
    const twice = withContribution('mock', (base) => ({
      ...base,
      secrets: [base.secrets[0], base.secrets[0]].filter((secret) => secret !== undefined),
    }));
    await expectCode(
      composePlanV2({ spec: spec({ mock: {} }), sidecars: lookup(twice), target }),
      'SECRET_NAME_CONFLICT',
    );
  });

  it('reports provider bugs as contract violations, not as the user config', async () => {
    const provider = withContribution('mock', (base) => ({
      ...base,
      files: [{ container: 'agent', root: 'skills', path: '../../etc/passwd', content: 'x' }],
    }));
    await expectCode(
      composePlanV2({ spec: spec({ mock: {} }), sidecars: lookup(provider), target }),
      'PROVIDER_CONTRACT_VIOLATION',
      'skills directory',
      'bug in sidecar "mock"',
    );
  });

  it('places skills in any absolute skills directory: the root, a trailing slash, a path with ".."', async () => {
    // Found by the API fuzzer: "/" made every skill a provider contract violation (a 500).
    for (const [skillsDirectory, expected] of [
      ['/', '/mock/SKILL.md'],
      ['/skills/', '/skills/mock/SKILL.md'],
      ['/opt/../skills', '/skills/mock/SKILL.md'],
      ['//home//agent', '/home/agent/mock/SKILL.md'],
    ] as const) {
      const plan = await composePlanV2({
        spec: parseInstanceSpec({
          name: 'demo',
          target: 'memory',
          agent: { image: 'localhost/agent:1', port: 18789, skillsDirectory },
          sidecars: { mock: {} },
        }),
        sidecars: lookup(createMockSidecarProvider()),
        target,
      });
      const agent = plan.containers.find((container) => container.name === 'agent');
      expect(
        agent?.files.map((file) => file.path),
        skillsDirectory,
      ).toEqual([expected]);
    }
  });

  it('refuses a skill file that is the skills directory itself or leaves it', async () => {
    for (const path of ['.', '', 'a/../..', '../skills-other/x', '/etc/passwd']) {
      const provider = withContribution('mock', (base) => ({
        ...base,
        files: [{ container: 'agent', root: 'skills', path, content: 'x' }],
      }));
      await expectCode(
        composePlanV2({ spec: spec({ mock: {} }), sidecars: lookup(provider), target }),
        'PROVIDER_CONTRACT_VIOLATION',
        'skills directory',
      );
    }
  });

  it('asks for a skills directory when a sidecar writes a skill and the spec has none', async () => {
    const noSkills = parseInstanceSpec({
      name: 'demo',
      target: 'memory',
      agent: { image: 'localhost/agent:1', port: 18789 },
      sidecars: { mock: {} },
    });
    await expectCode(
      composePlanV2({ spec: noSkills, sidecars: lookup(createMockSidecarProvider()), target }),
      'INVALID_INSTANCE_SPEC',
      'agent.skillsDirectory',
    );
  });

  it('rejects an unknown sidecar and an invalid sidecar config with the field path', async () => {
    await expectCode(
      composePlanV2({ spec: spec({ nope: {} }), sidecars: lookup(), target }),
      'UNKNOWN_PROVIDER',
      '"nope"',
    );
    await expectCode(
      composePlanV2({
        spec: spec({ mock: { port: 'x' } }),
        sidecars: lookup(createMockSidecarProvider()),
        target,
      }),
      'INVALID_PROVIDER_CONFIG',
      'sidecars.mock.port',
    );
  });

  it('rejects what the target cannot do: a network mode, or an egress it cannot enforce', async () => {
    const flat: TargetForComposition = {
      ...target,
      id: 'memory',
      capabilities: { ...target.capabilities, networkModes: ['open'], egress: ['none', 'internet'] },
    };
    await expectCode(
      composePlanV2({ spec: spec({}), sidecars: lookup(), target: flat }),
      'UNSUPPORTED_CAPABILITY',
      '"memory"',
    );
    const listed = withContribution('mock', (base) => ({
      ...base,
      containers: base.containers.map((container) => ({
        ...container,
        egress: { type: 'destinations' as const, destinations: ['api.example.test'] },
      })),
    }));
    await expectCode(
      composePlanV2({ spec: spec({ mock: {} }, 'open'), sidecars: lookup(listed), target: flat }),
      'UNSUPPORTED_CAPABILITY',
      'destinations',
    );
    const openOnly = createMockSidecarProvider({ capabilities: { networkModes: ['open'] } });
    await expectCode(
      composePlanV2({ spec: spec({ mock: {} }), sidecars: lookup(openOnly), target }),
      'UNSUPPORTED_CAPABILITY',
      '"mock"',
    );
  });
});

describe('composeRotationV2', () => {
  async function deployed(providers: ReturnType<typeof lookup>, sidecars: Record<string, unknown>) {
    const memory = createMemoryTargetProvider();
    const plan = await composePlanV2({ spec: spec(sidecars), sidecars: providers, target: memory });
    await memory.apply(plan);
    return { memory, spec: parseInstanceSpec(plan.redactedSpec) };
  }

  it('resolves the new contribution of one sidecar, validates the change, and persists the next config', async () => {
    const providers = lookup(createMockSidecarProvider());
    const { memory, spec: saved } = await deployed(providers, { mock: { port: 4300 } });
    const request = await composeRotationV2({
      spec: saved,
      providerId: 'mock',
      change: { token: 'x' },
      sidecars: providers,
      target: memory,
      readState: (id) => memory.readSidecarState('demo', id),
    });
    expect(request.parts.map((part) => part.providerId)).toEqual(['mock']);
    expect(request.parts[0]?.agentEnv).toEqual({ MOCK_URL: 'http://demo-mock.memory.invalid:4300' });
    expect(request.redactedSpec['sidecars']).toEqual({
      mock: { port: 4300, image: 'localhost/keyward-mock-sidecar:test', hasSecret: false },
    });
    await expect(
      composeRotationV2({
        spec: saved,
        providerId: 'mock',
        change: { bogus: 1 },
        sidecars: providers,
        target: memory,
        readState: (id) => memory.readSidecarState('demo', id),
      }),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('refuses a provider without rotation support', async () => {
    const providers = lookup(createMockSidecarProvider({ rotation: undefined }));
    const { memory, spec: saved } = await deployed(providers, { mock: {} });
    await expect(
      composeRotationV2({
        spec: saved,
        providerId: 'mock',
        change: {},
        sidecars: providers,
        target: memory,
        readState: (id) => memory.readSidecarState('demo', id),
      }),
    ).rejects.toMatchObject({ code: 'ROTATION_NOT_SUPPORTED' });
  });

  it('refuses a change whose merged config the provider schema rejects, instead of keeping a stale one', async () => {
    const strict = createMockSidecarProvider({
      rotation: {
        changeSchema: z.object({ port: z.string() }).strict() as never,
        rotate: (context, current) => createMockSidecarProvider().rotation!.rotate(context, current, {}),
      },
    });
    const providers = lookup(strict);
    const { memory, spec: saved } = await deployed(providers, { mock: {} });
    await expect(
      composeRotationV2({
        spec: saved,
        providerId: 'mock',
        change: { port: 'eighty' },
        sidecars: providers,
        target: memory,
        readState: (id) => memory.readSidecarState('demo', id),
      }),
    ).rejects.toMatchObject({ code: 'PROVIDER_CONTRACT_VIOLATION' });
  });

  it('moves the dependents of a provider whose exports changed, or refuses when one cannot follow', async () => {
    // A rotation that moves the port changes the export the dependent reads.
    const moving = (refreshable: boolean) => {
      const base = createMockSidecarProvider({ id: 'zzz' });
      const follower = dependent('aaa', 'zzz');
      return {
        zzz: createMockSidecarProvider({
          id: 'zzz',
          rotation: {
            changeSchema: z.object({ port: z.number() }).strict() as never,
            rotate: (context, _current, change) =>
              base.contribute(context, {
                port: (change as { port?: number }).port ?? 4202,
                image: 'localhost/keyward-mock-sidecar:test',
              }),
            nextRedactedConfig: (saved, change) => ({
              ...saved,
              port: (change as { port?: number }).port ?? 4202,
            }),
          },
        }),
        aaa: refreshable
          ? createMockSidecarProvider({
              ...follower,
              rotation: {
                changeSchema: z.object({}).strict(),
                rotate: () => {
                  throw new Error('not used');
                },
                refresh: (context, current) =>
                  follower.contribute(context, {
                    port: current.metadata['port'] as number,
                    image: 'localhost/keyward-mock-sidecar:test',
                  }),
              },
            })
          : follower,
      };
    };
    for (const refreshable of [true, false]) {
      const { zzz, aaa } = moving(refreshable);
      const providers = lookup(zzz, aaa);
      const { memory, spec: saved } = await deployed(providers, { aaa: { port: 4201 }, zzz: { port: 4202 } });
      const rotation = composeRotationV2({
        spec: saved,
        providerId: 'zzz',
        change: { port: 4203 },
        sidecars: providers,
        target: memory,
        readState: (id) => memory.readSidecarState('demo', id),
      });
      if (!refreshable) {
        await expect(rotation).rejects.toMatchObject({
          code: 'ROTATION_FAILED',
          message: expect.stringContaining('"aaa"'),
        });
        continue;
      }
      const request = await rotation;
      expect(request.parts.map((part) => part.providerId)).toEqual(['zzz', 'aaa']);
      expect(request.parts[1]?.containers[0]?.env['UPSTREAM']).toBe('localhost:4203');
      await memory.rotateSecrets('demo', request);
      const plan = memory.inspect('demo');
      expect(plan?.containers.find((container) => container.name === 'aaa')?.env['UPSTREAM']).toBe(
        'localhost:4203',
      );
      expect(plan?.redactedSpec['sidecars']).toMatchObject({ zzz: { port: 4203 } });
    }
  });

  it('keeps secrets answered for earlier requests visible to the containers that asked (state.requests)', async () => {
    const base = createMockSealingProvider();
    const sealer = createMockSealingProvider({
      rotation: {
        changeSchema: z.object({}).strict() as never,
        // A rotation sees no requests: it keeps what it sealed before, from the target's secrets.
        rotate: async (context, current) => {
          const fresh = await base.contribute(context, {
            port: 4300,
            image: 'localhost/keyward-mock-sealer:test',
          });
          const kept = Object.entries(current.secrets)
            .filter(([name]) => name.startsWith('sealer-for-'))
            .map(([name, value]) => ({
              name,
              value: value as string,
              visibleTo: ['gateway'],
              forRequest: 'upstream-key',
              delivery: { type: 'env' as const, variable: 'UPSTREAM_SEALED_KEY' },
            }));
          return { ...fresh, secrets: [...fresh.secrets, ...kept] };
        },
        nextRedactedConfig: (saved) => saved,
      },
    });
    const providers = lookup(sealer, createMockCredentialConsumerProvider());
    const { memory, spec: saved } = await deployed(providers, {
      sealer: {},
      gateway: { apiKey: 'raw-upstream-key' },
    });
    const rotate = (readState: Parameters<typeof composeRotationV2>[0]['readState']) =>
      composeRotationV2({
        spec: saved,
        providerId: 'sealer',
        change: {},
        sidecars: providers,
        target: memory,
        readState,
      });
    const request = await rotate((id) => memory.readSidecarState('demo', id));
    expect(request.parts.map((part) => part.providerId)).toEqual(['sealer']);
    expect(
      request.parts[0]?.secrets.find((secret) => secret.forRequest === 'upstream-key')?.visibleTo,
    ).toEqual(['gateway']);
    await memory.rotateSecrets('demo', request);
    const gateway = memory.inspect('demo')?.containers.find((container) => container.name === 'gateway');
    expect(gateway?.secretMounts.map((mount) => mount.secret)).toEqual(['sealer-for-gateway-upstream']);
    // A target that does not pass the stored requests cannot hand them to the asker.
    await expectCode(
      rotate(async (id) => {
        const { requests: _requests, ...state } = await memory.readSidecarState('demo', id);
        return state;
      }),
      'UNKNOWN_SECRET_CONSUMER',
      '"gateway"',
    );
  });
});
