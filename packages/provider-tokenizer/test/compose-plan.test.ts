// The tokenizer composed by core's v2 composer: core's conformance suite, a stand-in for the local
// target's addressing, and core's in-memory target for a full rotation.
import {
  type AnySidecarProviderV2,
  composePlanV2,
  composeRotationV2,
  type DeploymentPlanV2,
  isKeywardError,
  type NetworkMode,
  parseInstanceSpec,
  type SidecarStateV2,
} from '@keyward/core';
import {
  createMemoryTargetProvider,
  createMockCredentialConsumerProvider,
  testSidecarProvider,
} from '@keyward/core/testing';
import { openSecret, tokenDigest } from '@keyward/tokenizer';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { createTokenizerProvider, type TokenizerExports } from '../src/index.js';
import { createSeededRandomBytes, rawSecrets, stubTarget, twoCredentials } from './helpers.js';

const provider = createTokenizerProvider();

/**
 * A sidecar that needs an upstream key the way LiteLLM will: it requires the tokenizer, asks it
 * to seal the key for its own container, and reaches the proxy itself.
 */
function createGatewayProvider(): AnySidecarProviderV2 {
  const configSchema = z.object({ apiKey: z.string().optional(), port: z.number().default(4000) }).strict();
  return {
    specificationVersion: 'v2',
    id: 'litellm',
    configSchema,
    capabilities: { networkModes: ['proxy-only', 'open'] },
    requires: [{ provider: 'tokenizer' }],
    request: (_context, config: z.output<typeof configSchema>) => [
      {
        id: 'openai-key',
        provider: 'tokenizer',
        kind: 'sealed-credential',
        container: 'litellm',
        payload: {
          name: 'openai',
          secret: config.apiKey ?? '',
          allowedHosts: ['api.openai.com'],
          tokenVariable: 'OPENAI_SEALED_TOKEN',
          authVariable: 'OPENAI_PROXY_PASSWORD',
        },
      },
    ],
    contribute: (context, config: z.output<typeof configSchema>) => {
      const tokenizer = context.dependencies['tokenizer']?.exports as unknown as TokenizerExports;
      return {
        containers: [
          {
            name: 'litellm',
            image: 'localhost/litellm-standin:test',
            env: {
              HTTP_PROXY: `http://${context.addressOf('litellm', tokenizer.proxy.container, tokenizer.proxy.port)}`,
            },
            ports: [{ name: 'http', containerPort: config.port }],
            egress: { type: 'none' },
          },
        ],
        secrets: [],
        files: [],
        agentEnv: { LITELLM_URL: `http://${context.addressOf('agent', 'litellm', config.port)}` },
        connections: [
          { from: 'agent', to: 'litellm', port: config.port },
          { from: 'litellm', to: tokenizer.proxy.container, port: tokenizer.proxy.port },
        ],
        exports: {},
        metadata: { port: config.port },
      };
    },
    redactConfig: (config: z.output<typeof configSchema>) => ({ port: config.port }),
  };
}

const gateway = createGatewayProvider();
const sidecars = {
  getSidecar: (id: string) => (id === 'tokenizer' ? provider : id === 'litellm' ? gateway : undefined),
};

function spec(mode: NetworkMode, withGateway = false) {
  return parseInstanceSpec({
    name: 'demo',
    target: 'local',
    agent: {
      image: 'localhost/keyward-agent-standin:0.1.0',
      port: 18789,
      skillsDirectory: '/home/node/.openclaw/skills',
    },
    network: { egress: mode },
    sidecars: {
      tokenizer: twoCredentials,
      ...(withGateway ? { litellm: { apiKey: rawSecrets.openai } } : {}),
    },
  });
}

async function compose(mode: NetworkMode, withGateway = false, seed = 3): Promise<DeploymentPlanV2> {
  return composePlanV2({
    spec: spec(mode, withGateway),
    sidecars,
    target: stubTarget(),
    randomBytes: createSeededRandomBytes(seed),
  });
}

/** What a target reads back from a stored plan for `readSidecarState`. */
function stateFromPlan(plan: DeploymentPlanV2, providerId: string): SidecarStateV2 {
  const sidecar = plan.sidecars.find((item) => item.providerId === providerId);
  if (!sidecar) throw new Error(`no sidecar ${providerId}`);
  return {
    metadata: structuredClone(sidecar.metadata),
    exports: structuredClone(sidecar.exports),
    secrets: Object.fromEntries(
      plan.secrets
        .filter((secret) => secret.providerId === providerId)
        .map((secret) => [secret.name, secret.value]),
    ),
    requests: plan.sidecars.flatMap((item) =>
      item.requests
        .filter((request) => request.provider === providerId)
        .map((request) => ({ ...request, from: item.providerId })),
    ),
  };
}

const consumerKey = 'sk-consumer-RAW-upstream-0001';

testSidecarProvider({
  provider,
  validConfig: twoCredentials,
  // Core's mock gateway asks the tokenizer to seal its upstream key (its payload has no
  // authVariable: the default applies).
  companions: [
    {
      provider: createMockCredentialConsumerProvider({ sealer: 'tokenizer' }),
      config: { apiKey: consumerKey },
    },
  ],
  invalidConfigs: [
    {
      label: '51 credentials',
      config: {
        credentials: Array.from({ length: 51 }, (_, index) => ({
          name: `c${index}`,
          secret: 'x',
          allowedHosts: ['a.com'],
        })),
      },
    },
    {
      label: 'host with scheme',
      config: { credentials: [{ name: 'a', secret: 'x', allowedHosts: ['https://a.com'] }] },
    },
    {
      label: 'headerFmt without %s',
      config: { credentials: [{ name: 'a', secret: 'x', allowedHosts: ['a.com'], headerFmt: 'Bearer' }] },
    },
    {
      label: 'duplicate sanitised names',
      config: {
        credentials: [
          { name: 'a-b', secret: 'x', allowedHosts: ['a.com'] },
          { name: 'a b', secret: 'y', allowedHosts: ['a.com'] },
        ],
      },
    },
    {
      label: 'bad headerDst',
      config: { credentials: [{ name: 'a', secret: 'x', allowedHosts: ['a.com'], headerDst: 'X Y' }] },
    },
    {
      label: 'unknown processor',
      config: {
        credentials: [{ name: 'a', secret: 'x', allowedHosts: ['a.com'], processor: { type: 'nope' } }],
      },
    },
  ],
  forbiddenValues: [rawSecrets.github, rawSecrets.stripe, consumerKey],
  verificationOptions: { credential: 'github' },
});

describe('composePlanV2 with the tokenizer', () => {
  it.each([
    ['proxy-only', 'http://tokenizer:4001'],
    ['open', 'http://localhost:4001'],
  ] as const)('in %s mode the agent dials %s, through a declared connection', async (mode, url) => {
    const plan = await compose(mode);
    const agent = plan.containers.find((container) => container.name === 'agent');
    const tokenizer = plan.containers.find((container) => container.name === 'tokenizer');
    expect(agent?.env['TOKENIZER_PROXY_URL']).toBe(url);
    expect(agent?.env['TOKENIZER_HOSTS_GITHUB']).toBe('api.github.com');
    expect(agent?.env).not.toHaveProperty('TOKENIZER_CRED_GITHUB');
    expect(agent?.secretMounts.map((mount) => mount.delivery)).toEqual([
      { type: 'env', variable: 'TOKENIZER_CRED_GITHUB' },
      { type: 'env', variable: 'TOKENIZER_AUTH_GITHUB' },
      { type: 'env', variable: 'TOKENIZER_CRED_STRIPE' },
      { type: 'env', variable: 'TOKENIZER_AUTH_STRIPE' },
    ]);
    expect(agent?.startAfter).toEqual(['tokenizer']);
    const skill = agent?.files.find((file) => file.path === '/home/node/.openclaw/skills/tokenizer/SKILL.md');
    expect(skill?.content).toContain(`\`${url}\`, also in the environment variable`);
    expect(tokenizer).toMatchObject({
      role: 'sidecar',
      providerId: 'tokenizer',
      egress: { type: 'internet' },
      security: {
        runAsUser: 65532,
        readOnlyRootFilesystem: true,
        dropAllCapabilities: true,
        noNewPrivileges: true,
      },
    });
    expect(plan.connections).toEqual([{ from: 'agent', to: 'tokenizer', port: 4001 }]);
    expect(plan.sidecars[0]?.exports).toEqual({
      proxyUrl: url,
      proxy: { container: 'tokenizer', port: 4001 },
      sealKey: agent?.env['TOKENIZER_SEAL_KEY'],
    });
    expect(plan.sidecars[0]?.agentEnvKeys).toEqual([
      'TOKENIZER_AUTH_GITHUB',
      'TOKENIZER_AUTH_STRIPE',
      'TOKENIZER_CRED_GITHUB',
      'TOKENIZER_CRED_STRIPE',
      'TOKENIZER_HOSTS_GITHUB',
      'TOKENIZER_HOSTS_STRIPE',
      'TOKENIZER_PROXY_URL',
      'TOKENIZER_SEAL_KEY',
    ]);
    expect(plan.networkMode).toBe(mode);
  });

  it('is reproducible for the same randomness, apart from the sealed boxes', async () => {
    const first = await compose('proxy-only');
    const second = await compose('proxy-only');
    const stable = (plan: DeploymentPlanV2) =>
      JSON.stringify({
        ...plan,
        secrets: plan.secrets.map((secret) =>
          secret.name.startsWith('tokenizer-cred-') ? secret.name : secret,
        ),
        // The allow-list holds digests of the sealed boxes.
        containers: plan.containers.map((container) => ({
          ...container,
          files: container.files.map((file) =>
            file.path === '/etc/keyward/tokenizer/allowed-tokens'
              ? { ...file, content: file.content.replace(/sha256:[0-9a-f]{64}/g, 'sha256:<digest>') }
              : file,
          ),
        })),
        sidecars: plan.sidecars.map((sidecar) => ({
          ...sidecar,
          metadata: { ...sidecar.metadata, credentials: null },
        })),
      });
    expect(stable(first)).toBe(stable(second));
  });

  it('the redacted spec holds every credential without its secret', async () => {
    const plan = await compose('proxy-only');
    expect((plan.redactedSpec['sidecars'] as Record<string, unknown>)['tokenizer']).toEqual(
      provider.redactConfig(provider.configSchema.parse(twoCredentials)),
    );
    expect(JSON.stringify(plan.redactedSpec)).not.toContain(rawSecrets.github);
  });
});

describe('sealed credentials for another sidecar (LiteLLM-shaped)', () => {
  it('seals the requested key for the asking container alone, allow-listed, composed before it', async () => {
    const plan = await compose('proxy-only', true);
    expect(plan.sidecars.map((sidecar) => sidecar.providerId)).toEqual(['tokenizer', 'litellm']);
    const litellm = plan.containers.find((container) => container.name === 'litellm');
    const agent = plan.containers.find((container) => container.name === 'agent');
    const tokenizer = plan.containers.find((container) => container.name === 'tokenizer');
    expect(litellm?.startAfter).toEqual(['tokenizer']);
    expect(litellm?.env['HTTP_PROXY']).toBe('http://tokenizer:4001');
    expect(litellm?.secretMounts).toEqual([
      {
        secret: 'tokenizer-req-litellm-openai-key-cred',
        delivery: { type: 'env', variable: 'OPENAI_SEALED_TOKEN' },
      },
      {
        secret: 'tokenizer-req-litellm-openai-key-auth',
        delivery: { type: 'env', variable: 'OPENAI_PROXY_PASSWORD' },
      },
    ]);
    const answered = plan.secrets.filter((secret) => secret.forRequest === 'openai-key');
    expect(answered.map((secret) => [secret.name, secret.visibleTo, secret.agentSafe])).toEqual([
      ['tokenizer-req-litellm-openai-key-cred', ['litellm'], undefined],
      ['tokenizer-req-litellm-openai-key-auth', ['litellm'], undefined],
    ]);
    // Neither the agent nor the tokenizer's own container mounts them.
    for (const container of [agent, tokenizer]) {
      expect(container?.secretMounts.map((mount) => mount.secret)).not.toContain(answered[0]?.name);
    }
    // The proxy opens it: it is on the allow-list, and sealed with the instance's key.
    const sealed = answered[0]?.value as string;
    const allowList = tokenizer?.files.find((file) => file.path === '/etc/keyward/tokenizer/allowed-tokens');
    expect(allowList?.content).toContain(`sha256:${tokenDigest(sealed)}`);
    const openKey = plan.secrets.find((secret) => secret.name === 'tokenizer-open-key')?.value as string;
    expect(openSecret(sealed, openKey)).toMatchObject({
      processor: { type: 'inject', token: rawSecrets.openai, dst: 'Authorization', fmt: 'Bearer %s' },
      allowedHosts: ['api.openai.com'],
    });
    // Connections: the agent to both, LiteLLM to the proxy (declared by LiteLLM).
    expect(plan.connections).toEqual([
      { from: 'agent', to: 'litellm', port: 4000 },
      { from: 'agent', to: 'tokenizer', port: 4001 },
      { from: 'litellm', to: 'tokenizer', port: 4001 },
    ]);
    // Remembered by name, host and fingerprint, never by value; not on the user's credential view.
    const metadata = plan.sidecars[0]?.metadata as { requests: Record<string, unknown>[] };
    expect(metadata.requests).toEqual([
      {
        from: 'litellm',
        id: 'openai-key',
        container: 'litellm',
        name: 'openai',
        allowedHosts: ['api.openai.com'],
        secretNames: {
          token: 'tokenizer-req-litellm-openai-key-cred',
          auth: 'tokenizer-req-litellm-openai-key-auth',
        },
        variables: { token: 'OPENAI_SEALED_TOKEN', auth: 'OPENAI_PROXY_PASSWORD' },
        tokenFingerprint: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
      },
    ]);
    expect(provider.view.build({ metadata: plan.sidecars[0]?.metadata ?? {}, exports: {} })).toEqual({
      enabled: true,
      credentials: [
        { name: 'github', allowedHosts: ['api.github.com'] },
        {
          name: 'stripe',
          allowedHosts: ['api.stripe.com', 'files.stripe.com:8443'],
          headerDst: 'X-Api-Key',
          headerFmt: 'key=%s',
        },
      ],
    });
  });

  it('the raw key is nowhere in the plan; the requesting container holds only sealed values', async () => {
    const plan = await compose('proxy-only', true);
    const text = JSON.stringify(plan);
    for (const encoded of [
      rawSecrets.openai,
      Buffer.from(rawSecrets.openai).toString('base64'),
      Buffer.from(rawSecrets.openai).toString('hex'),
      encodeURIComponent(rawSecrets.openai),
    ]) {
      expect(text).not.toContain(encoded);
    }
    const litellm = plan.containers.find((container) => container.name === 'litellm');
    const openKey = plan.secrets.find((secret) => secret.name === 'tokenizer-open-key')?.value as string;
    const seen = (litellm?.secretMounts ?? []).map(
      (mount) => plan.secrets.find((secret) => secret.name === mount.secret)?.value as string,
    );
    expect(seen).toHaveLength(2);
    const [sealed, password] = seen as [string, string];
    expect(() => openSecret(sealed, openKey)).not.toThrow();
    expect(password).toMatch(/^[0-9a-f]{64}$/);
    expect(seen).not.toContain(openKey);
    expect(JSON.stringify(litellm)).not.toContain(openKey);
  });

  it('refuses an invalid request payload, naming the asking sidecar', async () => {
    const error = await composePlanV2({
      spec: parseInstanceSpec({
        ...spec('proxy-only', true),
        sidecars: { tokenizer: twoCredentials, litellm: { apiKey: '' } },
      }),
      sidecars,
      target: stubTarget(),
    }).catch((caught: unknown) => caught);
    expect(isKeywardError(error, 'INVALID_PROVIDER_CONFIG')).toBe(true);
    expect((error as Error).message).toContain(
      'Sidecar "litellm" cannot ask "tokenizer" for "sealed-credential"',
    );
    expect((error as Error).message).toContain('secret');
  });
});

describe('composeRotationV2 with the tokenizer', () => {
  const change = {
    credentials: [
      { name: 'github', secret: '', allowedHosts: ['api.github.com'] },
      { name: 'openai', secret: rawSecrets.openai, allowedHosts: ['api.openai.com'] },
    ],
  };

  it('keeps, adds and removes; keeps the open key and what it sealed for LiteLLM byte for byte', async () => {
    const plan = await compose('proxy-only', true);
    const request = await composeRotationV2({
      spec: spec('proxy-only', true),
      providerId: 'tokenizer',
      change,
      sidecars,
      target: stubTarget(),
      readState: async (id) => stateFromPlan(plan, id),
      randomBytes: createSeededRandomBytes(9),
    });
    // The exports did not change (same key, same address): LiteLLM need not follow.
    expect(request.parts.map((part) => part.providerId)).toEqual(['tokenizer']);
    const [part] = request.parts;
    const value = (secrets: { name: string; value: string }[], name: string) =>
      secrets.find((secret) => secret.name === name)?.value;
    for (const name of [
      'tokenizer-open-key',
      'tokenizer-cred-github',
      'tokenizer-auth-github',
      'tokenizer-req-litellm-openai-key-cred',
      'tokenizer-req-litellm-openai-key-auth',
    ]) {
      expect(value(part?.secrets ?? [], name), name).toBe(value(plan.secrets, name));
    }
    expect(
      part?.secrets.find((secret) => secret.name === 'tokenizer-req-litellm-openai-key-cred'),
    ).toMatchObject({
      visibleTo: ['litellm'],
      forRequest: 'openai-key',
      delivery: { type: 'env', variable: 'OPENAI_SEALED_TOKEN' },
    });
    expect(part?.secrets.map((secret) => secret.name)).not.toContain('tokenizer-cred-stripe');
    expect(part?.agentEnv['TOKENIZER_HOSTS_OPENAI']).toBe('api.openai.com');
    expect(part?.agentEnv).not.toHaveProperty('TOKENIZER_HOSTS_STRIPE');
    // The allow-list still lists LiteLLM's token, next to the agent's kept and new ones.
    const allowList = part?.containers[0]?.files.find((file) =>
      file.path.endsWith('allowed-tokens'),
    )?.content;
    const litellmToken = value(plan.secrets, 'tokenizer-req-litellm-openai-key-cred') as string;
    expect(allowList?.match(/^sha256:/gm)).toHaveLength(3);
    expect(allowList).toContain(`sha256:${tokenDigest(litellmToken)}`);
    expect(part?.sidecar.metadata['requests']).toEqual(plan.sidecars[0]?.metadata['requests']);
    const openKey = value(part?.secrets ?? [], 'tokenizer-open-key') as string;
    expect(
      openSecret(value(part?.secrets ?? [], 'tokenizer-cred-openai') as string, openKey).processor,
    ).toMatchObject({
      token: rawSecrets.openai,
    });
    const skill = part?.agentFiles.find((file) => file.path.endsWith('tokenizer/SKILL.md'))?.content ?? '';
    expect(skill).toContain('### github');
    expect(skill).toContain('### openai');
    expect(skill).not.toContain('stripe');
  });

  it('refuses to mint a new key while LiteLLM holds tokens sealed with the old one', async () => {
    const plan = await compose('proxy-only', true);
    const error = await composeRotationV2({
      spec: spec('proxy-only', true),
      providerId: 'tokenizer',
      change: { credentials: [{ name: 'github', secret: 'ghp_new', allowedHosts: ['api.github.com'] }] },
      sidecars,
      target: stubTarget(),
      readState: async (id) => {
        const state = stateFromPlan(plan, id);
        delete state.secrets['tokenizer-open-key'];
        return state;
      },
    }).catch((caught: unknown) => caught);
    expect(isKeywardError(error, 'OPEN_KEY_MISSING')).toBe(true);
    expect((error as Error).message).toContain('"openai" (sealed for sidecar "litellm")');
    expect(provider.errorCodes['OPEN_KEY_MISSING']?.httpStatus).toBe(409);
  });

  it('persists the redacted config that follows the rotation: add, keep, remove', async () => {
    const plan = await compose('proxy-only');
    const request = await composeRotationV2({
      spec: parseInstanceSpec({ ...spec('proxy-only'), sidecars: plan.redactedSpec['sidecars'] }),
      providerId: 'tokenizer',
      // Kept entries may leave their hosts out; the persisted config still has them.
      change: {
        credentials: [
          { name: 'STRIPE', secret: '' },
          { name: 'openai', secret: rawSecrets.openai, allowedHosts: 'api.openai.com, API.openai.com' },
        ],
      },
      sidecars,
      target: stubTarget(),
      readState: async (id) => stateFromPlan(plan, id),
      randomBytes: createSeededRandomBytes(9),
    });
    const persisted = (request.redactedSpec['sidecars'] as Record<string, unknown>)['tokenizer'];
    expect(persisted).toEqual({
      credentials: [
        {
          name: 'STRIPE',
          allowedHosts: ['api.stripe.com', 'files.stripe.com:8443'],
          headerDst: 'X-Api-Key',
          headerFmt: 'key=%s',
        },
        { name: 'openai', allowedHosts: ['api.openai.com'] },
      ],
      port: 4001,
      adminPort: 4002,
      allowPrivateUpstreams: false,
    });
    expect(JSON.stringify(request.redactedSpec)).not.toContain(rawSecrets.openai);
    // The persisted config parses (a later deploy or rotation reads it back).
    expect(provider.configSchema.safeParse(persisted).success).toBe(true);
    // And the view of the new metadata lists the same credentials.
    expect(
      provider.view.build({ metadata: request.parts[0]?.sidecar.metadata ?? {}, exports: {} })['credentials'],
    ).toEqual((persisted as { credentials: unknown }).credentials);
  });
});

describe('a rotation through core in-memory target', () => {
  it('deploy, read state, compose the rotation, apply it: LiteLLM keeps its sealed key mounted', async () => {
    const target = createMemoryTargetProvider({ id: 'local' });
    const plan = await composePlanV2({
      spec: spec('proxy-only', true),
      sidecars,
      target,
      randomBytes: createSeededRandomBytes(3),
    });
    await target.apply(plan);
    const request = await composeRotationV2({
      spec: spec('proxy-only', true),
      providerId: 'tokenizer',
      change: { credentials: [{ name: 'github', secret: '' }] },
      sidecars,
      target,
      readState: (id) => target.readSidecarState('demo', id),
      randomBytes: createSeededRandomBytes(9),
    });
    await target.rotateSecrets('demo', request);
    const after = target.inspect('demo');
    const litellm = after?.containers.find((container) => container.name === 'litellm');
    expect(litellm?.secretMounts.map((mount) => mount.secret).sort()).toEqual([
      'tokenizer-req-litellm-openai-key-auth',
      'tokenizer-req-litellm-openai-key-cred',
    ]);
    const value = (which: DeploymentPlanV2 | undefined, name: string) =>
      which?.secrets.find((secret) => secret.name === name)?.value;
    expect(value(after, 'tokenizer-req-litellm-openai-key-cred')).toBe(
      value(plan, 'tokenizer-req-litellm-openai-key-cred'),
    );
    const agent = after?.containers.find((container) => container.name === 'agent');
    expect(agent?.secretMounts.map((mount) => mount.secret).sort()).toEqual([
      'tokenizer-auth-github',
      'tokenizer-cred-github',
    ]);
    expect(agent?.env).not.toHaveProperty('TOKENIZER_HOSTS_STRIPE');
    const sidecarConfigs = (after?.redactedSpec['sidecars'] ?? {}) as Record<
      string,
      { credentials: unknown }
    >;
    const persisted = sidecarConfigs['tokenizer'];
    expect(persisted?.credentials).toEqual([{ name: 'github', allowedHosts: ['api.github.com'] }]);
  });
});
