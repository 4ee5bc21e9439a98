import { composePlanV2, type DeploymentPlanV2, type NetworkMode, parseInstanceSpec } from '@keyward/core';
import { createMemoryTargetProvider, testSidecarProvider } from '@keyward/core/testing';
import { createOtelProvider } from '@keyward/provider-otel';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createLitellmProvider } from '../src/index.js';

const openaiKey = 'sk-openai-raw-key-0123456789';
const anthropicKey = 'sk-ant-raw-key-9876543210';

const validConfig = {
  models: [
    { name: 'gpt-4o', model: 'openai/gpt-4o', credential: 'openai' },
    { name: 'claude', model: 'anthropic/claude-sonnet-4-5', credential: 'anthropic' },
  ],
  credentials: [
    { name: 'openai', secret: openaiKey, host: 'api.openai.com' },
    {
      name: 'anthropic',
      secret: anthropicKey,
      host: 'api.anthropic.com',
      headerDst: 'x-api-key',
      headerFmt: '%s',
    },
  ],
};

const litellm = createLitellmProvider({ defaultImage: 'localhost/keyward-litellm:test' });
const tokenizer = createTokenizerProvider();
const otel = createOtelProvider();

testSidecarProvider({
  provider: litellm,
  validConfig,
  invalidConfigs: [
    { label: 'no model', config: { ...validConfig, models: [] } },
    {
      label: 'a model on an unknown credential',
      config: { ...validConfig, models: [{ name: 'x', model: 'openai/x', credential: 'nope' }] },
    },
    {
      label: 'a host with a scheme',
      config: {
        ...validConfig,
        credentials: [{ name: 'openai', secret: 'k', host: 'https://api.openai.com' }],
      },
    },
    {
      label: 'a model string without provider',
      config: { ...validConfig, models: [{ name: 'x', model: 'gpt-4o', credential: 'openai' }] },
    },
    {
      label: 'two credentials with one name',
      config: { ...validConfig, credentials: [validConfig.credentials[0], validConfig.credentials[0]] },
    },
    { label: 'a setting keyward owns', config: { ...validConfig, settings: { general_settings: {} } } },
    {
      label: 'a host with port 443 spelled out',
      config: {
        ...validConfig,
        credentials: [{ name: 'openai', secret: 'k', host: 'api.openai.com:443' }],
      },
    },
    {
      label: 'a host with a port out of range',
      config: {
        ...validConfig,
        credentials: [{ name: 'openai', secret: 'k', host: 'api.openai.com:70000' }],
      },
    },
  ],
  forbiddenValues: [openaiKey, anthropicKey],
  companions: [{ provider: tokenizer, config: { credentials: [] } }],
});

function compose(
  mode: NetworkMode,
  withTelemetry: boolean,
  renderStyle: 'pods' | 'compose' = 'pods',
  litellmConfig: Record<string, unknown> = validConfig,
): Promise<DeploymentPlanV2> {
  const providers = [litellm, tokenizer, otel];
  return composePlanV2({
    spec: parseInstanceSpec({
      name: 'chain',
      target: 'memory',
      agent: { image: 'localhost/agent:1', port: 18789, skillsDirectory: '/agent/skills' },
      network: { egress: mode },
      sidecars: {
        litellm: litellmConfig,
        tokenizer: { credentials: [] },
        ...(withTelemetry ? { otel: { exporters: { file: {} } } } : {}),
      },
    }),
    sidecars: { getSidecar: (id) => providers.find((provider) => provider.id === id) },
    target: createMemoryTargetProvider({ renderStyle }),
  });
}

function envOf(plan: DeploymentPlanV2, container: string) {
  return plan.containers.find((item) => item.name === container)?.env ?? {};
}

function mountedVariables(plan: DeploymentPlanV2, container: string) {
  return (plan.containers.find((item) => item.name === container)?.secretMounts ?? [])
    .map((mount) => (mount.delivery.type === 'env' ? mount.delivery.variable : mount.delivery.path))
    .sort();
}

describe('litellm with the tokenizer (and the collector)', () => {
  for (const mode of ['proxy-only', 'open'] as const) {
    it(`never puts a provider key anywhere but inside a sealed token (${mode})`, async () => {
      const plan = await compose(mode, true);
      const text = JSON.stringify(plan);
      expect(text).not.toContain(openaiKey);
      expect(text).not.toContain(anthropicKey);
      expect(mountedVariables(plan, 'litellm')).toEqual([
        'KEYWARD_PROXY_AUTH',
        'KEYWARD_SEALED_ANTHROPIC',
        'KEYWARD_SEALED_OPENAI',
        'LITELLM_MASTER_KEY',
      ]);
      expect(mountedVariables(plan, 'agent')).toEqual(['OPENAI_API_KEY']);
      expect(mountedVariables(plan, 'tokenizer')).toEqual(['/run/keyward/tokenizer/open-key']);
      expect(mountedVariables(plan, 'otel')).toEqual([]);
      for (const secret of plan.secrets.filter((item) => item.forRequest)) {
        expect(secret.providerId).toBe('tokenizer');
        expect(secret.visibleTo).toEqual(['litellm']);
      }
    });
  }

  it('starts the tokenizer and the collector before LiteLLM, and the agent last', async () => {
    const plan = await compose('proxy-only', true);
    expect(plan.sidecars.map((sidecar) => sidecar.providerId)).toEqual(['otel', 'tokenizer', 'litellm']);
    expect(plan.containers.find((item) => item.name === 'litellm')?.startAfter).toEqual([
      'otel',
      'tokenizer',
    ]);
    expect(plan.containers[0]?.startAfter).toEqual(['otel', 'tokenizer', 'litellm']);
  });

  it('lets the agent reach the gateway, the proxy and the collector, and LiteLLM only the proxy and the collector', async () => {
    const plan = await compose('proxy-only', true);
    expect(plan.connections).toEqual([
      { from: 'agent', to: 'litellm', port: 4000 },
      { from: 'agent', to: 'otel', port: 4317 },
      { from: 'agent', to: 'otel', port: 4318 },
      { from: 'agent', to: 'tokenizer', port: 4001 },
      { from: 'litellm', to: 'otel', port: 4318 },
      { from: 'litellm', to: 'tokenizer', port: 4001 },
      // The proxy exports its spans and metrics to the collector too.
      { from: 'tokenizer', to: 'otel', port: 4318 },
    ]);
    expect(plan.containers.find((item) => item.name === 'litellm')?.egress).toEqual({ type: 'none' });
  });

  it('uses the addresses each target gives, in each network mode', async () => {
    const isolated = await compose('proxy-only', true);
    const open = await compose('open', true);
    expect(envOf(isolated, 'agent')['OPENAI_BASE_URL']).toBe('http://chain-litellm.memory.invalid:4000/v1');
    expect(envOf(open, 'agent')['OPENAI_BASE_URL']).toBe('http://localhost:4000/v1');
    // LiteLLM and the tokenizer share the egress side: localhost.
    const command = isolated.containers.find((item) => item.name === 'litellm')?.command ?? [];
    expect(command.join(' ')).toContain('@localhost:4001');
    expect(command.join(' ')).not.toMatch(/[0-9a-f]{64}/);
    expect(envOf(isolated, 'litellm')['OTEL_EXPORTER_OTLP_ENDPOINT']).toBe('http://localhost:4318');
  });

  it('writes a LiteLLM config with plain-http upstreams, the sealed token by reference and no key', async () => {
    const plan = await compose('proxy-only', false);
    const file = plan.containers.find((item) => item.name === 'litellm')?.files[0];
    expect(file?.path).toBe('/etc/keyward/litellm/config.yaml');
    const configuration = parse(file?.content ?? '');
    expect(configuration).toEqual({
      model_list: [
        {
          model_name: 'gpt-4o',
          litellm_params: {
            model: 'openai/gpt-4o',
            api_base: 'http://api.openai.com/v1',
            api_key: 'sealed-by-keyward',
            headers: { 'Proxy-Tokenizer': 'os.environ/KEYWARD_SEALED_OPENAI' },
          },
        },
        {
          model_name: 'claude',
          litellm_params: {
            model: 'anthropic/claude-sonnet-4-5',
            api_base: 'http://api.anthropic.com',
            api_key: 'sealed-by-keyward',
            headers: { 'Proxy-Tokenizer': 'os.environ/KEYWARD_SEALED_ANTHROPIC' },
          },
        },
      ],
      general_settings: { master_key: 'os.environ/LITELLM_MASTER_KEY' },
    });
  });

  it('calls a credential host on another port than 443 at that port', async () => {
    const plan = await composePlanV2({
      spec: parseInstanceSpec({
        name: 'ported',
        target: 'memory',
        agent: { image: 'localhost/agent:1', port: 18789, skillsDirectory: '/agent/skills' },
        sidecars: {
          litellm: {
            models: [{ name: 'm', model: 'openai/m', credential: 'local' }],
            credentials: [{ name: 'local', secret: openaiKey, host: 'model-api.test:8443' }],
          },
          tokenizer: { credentials: [] },
        },
      }),
      sidecars: { getSidecar: (id) => [litellm, tokenizer].find((provider) => provider.id === id) },
      target: createMemoryTargetProvider(),
    });
    const file = plan.containers.find((item) => item.name === 'litellm')?.files[0];
    expect(parse(file?.content ?? '').model_list[0].litellm_params.api_base).toBe(
      'http://model-api.test:8443/v1',
    );
    const tokenizerMetadata = plan.sidecars.find((sidecar) => sidecar.providerId === 'tokenizer')?.metadata;
    expect(JSON.stringify(tokenizerMetadata)).toContain('model-api.test:8443');
  });

  it('reports to the collector only when there is one', async () => {
    const withCollector = parse(
      (await compose('open', true)).containers.find((item) => item.name === 'litellm')?.files[0]?.content ??
        '',
    );
    // Its spans go to the collector, and the caller's traceparent goes on to the tokenizer.
    expect(withCollector.litellm_settings).toEqual({
      callbacks: ['otel'],
      forward_traceparent_to_llm_provider: true,
    });
    const open = await compose('open', true);
    expect(
      Object.fromEntries(Object.entries(envOf(open, 'litellm')).filter(([name]) => name.startsWith('OTEL_'))),
    ).toEqual({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_SERVICE_NAME: 'chain-litellm',
      OTEL_BSP_SCHEDULE_DELAY: '1000',
      OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'NO_CONTENT',
    });
    // The collector is reached directly, never through the tokenizer.
    expect(envOf(open, 'litellm')['NO_PROXY']).toBe('localhost,127.0.0.1');
    expect(envOf(await compose('proxy-only', true), 'litellm')['NO_PROXY']).toBe('localhost,127.0.0.1');
    const without = await compose('open', false);
    expect(Object.keys(envOf(without, 'litellm')).filter((name) => name.startsWith('OTEL_'))).toEqual([]);
    expect(
      parse(without.containers.find((item) => item.name === 'litellm')?.files[0]?.content ?? '')
        .litellm_settings,
    ).toBeUndefined();
  });

  it('keeps the user’s own litellm_settings next to the otel callback, and their choice on traceparent', async () => {
    const plan = await compose('proxy-only', true, 'pods', {
      ...validConfig,
      settings: {
        litellm_settings: {
          callbacks: ['prometheus', 'otel'],
          forward_traceparent_to_llm_provider: false,
          drop_params: true,
        },
      },
    });
    const gateway = plan.containers.find((item) => item.name === 'litellm');
    expect(parse(gateway?.files[0]?.content ?? '').litellm_settings).toEqual({
      callbacks: ['prometheus', 'otel'],
      forward_traceparent_to_llm_provider: false,
      drop_params: true,
    });
  });

  it('leaves the otel callback out for an image without the OpenTelemetry SDK (exportTraces: false)', async () => {
    const plan = await compose('proxy-only', true, 'pods', { ...validConfig, exportTraces: false });
    const gateway = plan.containers.find((item) => item.name === 'litellm');
    expect(parse(gateway?.files[0]?.content ?? '').litellm_settings).toBeUndefined();
    expect(Object.keys(gateway?.env ?? {}).filter((name) => name.startsWith('OTEL_'))).toEqual([]);
    expect(plan.connections.filter((connection) => connection.from === 'litellm')).toEqual([
      { from: 'litellm', to: 'tokenizer', port: 4001 },
    ]);
    // The agent still reports to the collector.
    expect(envOf(plan, 'agent')['OTEL_EXPORTER_OTLP_ENDPOINT']).toBeDefined();
  });

  it('renders the chain for two kinds of runtime from the same plan', async () => {
    const pods = createMemoryTargetProvider({ renderStyle: 'pods' });
    const plan = await compose('proxy-only', true);
    const rendered = pods.renderData(plan) as { pods: { name: string; containers: string[] }[] };
    expect(rendered.pods).toEqual([
      { name: 'chain-agent', containers: ['agent'] },
      { name: 'chain-egress', containers: ['otel', 'tokenizer', 'litellm'] },
    ]);
    const compose2 = createMemoryTargetProvider({ renderStyle: 'compose' }).renderData(plan) as {
      services: { name: string; networks: string[] }[];
    };
    expect(compose2.services.find((service) => service.name === 'chain-litellm')?.networks).toEqual([
      'internal',
    ]);
    expect(compose2.services.find((service) => service.name === 'chain-tokenizer')?.networks).toEqual([
      'internal',
      'egress',
    ]);
  });

  it('refuses a deploy without the tokenizer, and a credential without its key', async () => {
    await expect(
      composePlanV2({
        spec: parseInstanceSpec({
          name: 'alone',
          target: 'memory',
          agent: { image: 'localhost/agent:1', port: 18789 },
          sidecars: { litellm: validConfig },
        }),
        sidecars: { getSidecar: (id) => (id === 'litellm' ? litellm : undefined) },
        target: createMemoryTargetProvider(),
      }),
    ).rejects.toMatchObject({ code: 'MISSING_DEPENDENCY' });
    const keyless = {
      ...validConfig,
      credentials: validConfig.credentials.map(({ secret: _secret, ...rest }) => rest),
    };
    await expect(
      composePlanV2({
        spec: parseInstanceSpec({
          name: 'keyless',
          target: 'memory',
          agent: { image: 'localhost/agent:1', port: 18789 },
          sidecars: { litellm: keyless, tokenizer: { credentials: [] } },
        }),
        sidecars: { getSidecar: (id) => [litellm, tokenizer].find((provider) => provider.id === id) },
        target: createMemoryTargetProvider(),
      }),
    ).rejects.toMatchObject({
      code: 'INVALID_PROVIDER_CONFIG',
      message: expect.stringContaining('"openai" has no secret'),
    });
  });

  it('judges its self-test by the models the gateway lists', async () => {
    const [check] = await litellm.verification!.checks(
      {
        instanceName: 'chain',
        networkMode: 'proxy-only',
        metadata: {
          agentBaseUrl: 'http://litellm:4000',
          apiKeyVariable: 'OPENAI_API_KEY',
          models: [{ name: 'gpt-4o', model: 'openai/gpt-4o', credential: 'openai' }],
          credentials: [],
          telemetry: false,
        },
        exports: {},
      },
      undefined,
    );
    expect(check?.exec.stdin).not.toContain('sk-');
    const judge = (stdout: string) => check!.judge({ exitCode: 0, stdout, stderr: '', timedOut: false });
    expect(judge('{"status":200,"models":["gpt-4o"]}').passed).toBe(true);
    expect(judge('{"status":200,"models":[]}')).toEqual({
      passed: false,
      evidence: 'GET http://litellm:4000/v1/models → 200, models: none; missing: gpt-4o',
    });
    expect(judge('{"status":401,"models":[]}').passed).toBe(false);
  });
});
