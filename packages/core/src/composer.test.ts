import { describe, expect, it } from 'vitest';
import { composePlan, composeRotation } from './composer.js';
import { isKeywardError, type KeywardErrorCode } from './errors/keyward-error.js';
import { parseInstanceSpec } from './instance-spec.js';
import { labelKeys } from './labels.js';
import type { SidecarContributionV1 } from './spec/v1/contribution-v1.js';
import type { SidecarProviderV1 } from './spec/v1/sidecar-provider-v1.js';
import { createMockSidecarProvider, createSeededRandomBytes } from './testing/mock-sidecar-provider.js';

// biome-ignore lint/suspicious/noExplicitAny: providers of any config.
function lookup(...providers: SidecarProviderV1<any, any>[]) {
  return { getSidecar: (id: string) => providers.find((provider) => provider.id === id) };
}

function spec(sidecars: Record<string, unknown>, egress: 'proxy-only' | 'open' = 'proxy-only') {
  return parseInstanceSpec({
    name: 'demo',
    agent: { image: 'localhost/agent:1', env: { LOG_LEVEL: 'info' } },
    network: { egress },
    sidecars,
  });
}

function withContribution(id: string, change: (base: SidecarContributionV1) => SidecarContributionV1) {
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

describe('composePlan', () => {
  it('is deterministic: the same input and random source give the same plan', async () => {
    const providers = lookup(
      createMockSidecarProvider({ id: 'alpha' }),
      createMockSidecarProvider({ id: 'beta' }),
    );
    const input = spec({ beta: { port: 4200 }, alpha: { secret: 'super-secret-value' } });
    const first = await composePlan({
      spec: input,
      sidecars: providers,
      randomBytes: createSeededRandomBytes(9),
    });
    const second = await composePlan({
      spec: input,
      sidecars: providers,
      randomBytes: createSeededRandomBytes(9),
    });
    expect(second).toEqual(first);
    expect(first.containers.map((container) => container.name)).toEqual(['agent', 'alpha', 'beta']);
  });

  it('computes sidecar addresses per network mode', async () => {
    const providers = lookup(createMockSidecarProvider());
    const isolated = await composePlan({ spec: spec({ mock: {} }), sidecars: providers });
    const open = await composePlan({ spec: spec({ mock: {} }, 'open'), sidecars: providers });
    expect(isolated.containers[0]?.env['MOCK_URL']).toBe('http://mock:4100');
    expect(open.containers[0]?.env['MOCK_URL']).toBe('http://localhost:4100');
    expect(isolated.network).toEqual({
      mode: 'proxy-only',
      internalNetwork: 'keyward-demo-internal',
      egressNetwork: 'keyward-demo-egress',
    });
    expect(isolated.containers[0]?.egress).toBe('none');
    expect(open.warnings.map((warning) => warning.code)).toContain('OPEN_EGRESS');
  });

  it('labels every container and secret with the instance, provider and spec version', async () => {
    const plan = await composePlan({
      spec: spec({ mock: { secret: 'super-secret-value' } }),
      sidecars: lookup(createMockSidecarProvider()),
    });
    for (const object of [...plan.containers, ...plan.secrets]) {
      expect(object.labels[labelKeys.managedBy]).toBe('keyward');
      expect(object.labels[labelKeys.instance]).toBe('demo');
      expect(object.labels[labelKeys.specVersion]).toBe('v1');
      expect(object.labels[labelKeys.provider]).toMatch(/^(agent|mock)$/);
    }
    expect(plan.containers.map((container) => container.runtimeName)).toEqual([
      'keyward-demo-agent',
      'keyward-demo-mock',
    ]);
  });

  it('routes secrets only to the containers they are visible to', async () => {
    const plan = await composePlan({
      spec: spec({ mock: { secret: 'super-secret-value' } }),
      sidecars: lookup(createMockSidecarProvider()),
    });
    const [agent, mock] = plan.containers;
    expect(agent?.secretMounts.map((mount) => mount.secret)).toEqual(['mock-agent-token']);
    expect(mock?.secretMounts.map((mount) => mount.secret)).toEqual(['mock-secret']);
    expect(JSON.stringify(plan.redactedSpec)).not.toContain('super-secret-value');
    expect(plan.sidecars[0]?.agentEnvKeys).toEqual(['MOCK_TOKEN', 'MOCK_URL']);
    expect(agent?.files.map((file) => file.path)).toEqual(['/home/node/.openclaw/skills/mock/SKILL.md']);
  });

  it('rejects two sidecars on one port and names both providers', async () => {
    await expectCode(
      composePlan({
        spec: spec({ one: { port: 5000 }, two: { port: 5000 } }),
        sidecars: lookup(createMockSidecarProvider({ id: 'one' }), createMockSidecarProvider({ id: 'two' })),
      }),
      'PORT_CONFLICT',
      'sidecar "one"',
      'sidecar "two"',
      '5000',
    );
  });

  it('rejects a sidecar port that collides with the agent port', async () => {
    await expectCode(
      composePlan({ spec: spec({ mock: { port: 18789 } }), sidecars: lookup(createMockSidecarProvider()) }),
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
      composePlan({ spec: spec({ mock: {} }), sidecars: lookup(provider) }),
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
      composePlan({ spec: spec({ mock: {} }), sidecars: lookup(provider) }),
      'SECRET_NOT_AGENT_SAFE',
      '"mock"',
      '"raw"',
    );
  });

  it('rejects a secret value placed in a plain field', async () => {
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
      metadata: { note: 'leaky-secret-value' },
    }));
    await expectCode(
      composePlan({ spec: spec({ mock: {} }), sidecars: lookup(provider) }),
      'SECRET_IN_PLAIN_FIELD',
      'metadata',
    );
  });

  it('rejects two sidecars setting the same agent env variable', async () => {
    const one = withContribution('one', (base) => ({ ...base, agentEnv: { ...base.agentEnv, SHARED: 'a' } }));
    const two = withContribution('two', (base) => ({ ...base, agentEnv: { ...base.agentEnv, SHARED: 'b' } }));
    await expectCode(
      composePlan({ spec: spec({ one: { port: 5001 }, two: { port: 5002 } }), sidecars: lookup(one, two) }),
      'ENV_CONFLICT',
      'SHARED',
      '"two"',
    );
  });

  it('rejects a sidecar env variable that overrides the spec agent env', async () => {
    const provider = withContribution('mock', (base) => ({ ...base, agentEnv: { LOG_LEVEL: 'debug' } }));
    await expectCode(
      composePlan({ spec: spec({ mock: {} }), sidecars: lookup(provider) }),
      'ENV_CONFLICT',
      'agent.env',
    );
  });

  it('rejects two sidecars with the same container name', async () => {
    const one = withContribution('one', (base) => ({
      ...base,
      containers: base.containers.map((c) => ({ ...c, name: 'proxy' })),
      secrets: [],
      files: [],
    }));
    const two = withContribution('two', (base) => ({
      ...base,
      containers: base.containers.map((c) => ({
        ...c,
        name: 'proxy',
        ports: [{ name: 'http', containerPort: 5999 }],
      })),
      secrets: [],
      files: [],
    }));
    await expectCode(
      composePlan({ spec: spec({ one: {}, two: {} }), sidecars: lookup(one, two) }),
      'CONTAINER_NAME_CONFLICT',
      '"one"',
      '"two"',
    );
  });

  it('rejects a container named agent', async () => {
    const provider = withContribution('mock', (base) => ({
      ...base,
      containers: base.containers.map((c) => ({ ...c, name: 'agent' })),
      secrets: [],
      files: [],
    }));
    await expectCode(
      composePlan({ spec: spec({ mock: {} }), sidecars: lookup(provider) }),
      'CONTAINER_NAME_CONFLICT',
      'reserved',
    );
  });

  it('rejects a file outside the skills directory', async () => {
    const provider = withContribution('mock', (base) => ({
      ...base,
      files: [{ container: 'agent', root: 'skills', path: '../../etc/passwd', content: 'x' }],
    }));
    await expectCode(
      composePlan({ spec: spec({ mock: {} }), sidecars: lookup(provider) }),
      'INVALID_PROVIDER_CONFIG',
      'skills directory',
    );
  });

  it('rejects an unknown sidecar and an invalid sidecar config with the field path', async () => {
    await expectCode(
      composePlan({ spec: spec({ nope: {} }), sidecars: lookup() }),
      'UNKNOWN_PROVIDER',
      '"nope"',
    );
    await expectCode(
      composePlan({ spec: spec({ mock: { port: 'x' } }), sidecars: lookup(createMockSidecarProvider()) }),
      'INVALID_PROVIDER_CONFIG',
      'sidecars.mock.port',
    );
  });

  it('rejects a network mode the target or the sidecar does not support', async () => {
    await expectCode(
      composePlan({
        spec: spec({}),
        sidecars: lookup(),
        target: {
          id: 'flat',
          capabilities: {
            networkModes: ['open'],
            rotation: false,
            render: false,
            verify: false,
            logsFollow: false,
          },
        },
      }),
      'UNSUPPORTED_CAPABILITY',
      '"flat"',
    );
    const openOnly = createMockSidecarProvider({ capabilities: { networkModes: ['open'] } });
    await expectCode(
      composePlan({ spec: spec({ mock: {} }), sidecars: lookup(openOnly) }),
      'UNSUPPORTED_CAPABILITY',
      '"mock"',
    );
  });
});

describe('composeRotation', () => {
  it('resolves the new contribution of one sidecar and validates the change', async () => {
    const provider = createMockSidecarProvider();
    const request = await composeRotation({
      spec: spec({ mock: {} }),
      provider,
      current: { metadata: { port: 4300 }, secrets: {} },
      change: { token: 'x' },
    });
    expect(request.agentEnv).toEqual({ MOCK_URL: 'http://mock:4300' });
    expect(request.containers.map((container) => container.runtimeName)).toEqual(['keyward-demo-mock']);
    await expect(
      composeRotation({
        spec: spec({ mock: {} }),
        provider,
        current: { metadata: {}, secrets: {} },
        change: { bogus: 1 },
      }),
    ).rejects.toMatchObject({ code: 'INVALID_PROVIDER_CONFIG' });
  });

  it('refuses a provider without rotation support', async () => {
    const provider = createMockSidecarProvider({ rotation: undefined });
    await expect(
      composeRotation({
        spec: spec({ mock: {} }),
        provider,
        current: { metadata: {}, secrets: {} },
        change: {},
      }),
    ).rejects.toMatchObject({ code: 'ROTATION_NOT_SUPPORTED' });
  });
});
