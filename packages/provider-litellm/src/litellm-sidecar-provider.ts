import {
  type JsonObject,
  KeywardError,
  type SidecarContextV2,
  type SidecarContributionV2,
  type SidecarProviderV2,
  type SidecarRequestV2,
} from '@keyward/core';
import * as z from 'zod';
import {
  gatewayConfiguration,
  MASTER_KEY_VARIABLE,
  PROXY_PASSWORD_VARIABLE,
  sealedTokenVariable,
} from './gateway-configuration.js';
import { LITELLM_DEFAULT_IMAGE, type LitellmConfig, litellmConfigSchema } from './litellm-config.js';
import { gatewayChecks } from './litellm-self-test.js';

export const LITELLM_PROVIDER_ID = 'litellm';
export const LITELLM_CONTAINER_NAME = 'litellm';
export const LITELLM_CONFIG_PATH = '/etc/keyward/litellm/config.yaml';
/** The provider that seals the upstream keys and injects them. */
export const SEALING_PROVIDER_ID = 'tokenizer';
const TELEMETRY_PROVIDER_ID = 'otel';

export interface LitellmProviderSettings {
  /** Image used when a config has no `image`; defaults to `LITELLM_DEFAULT_IMAGE`. */
  defaultImage?: string;
}

export type LitellmProvider = SidecarProviderV2<LitellmConfig, never>;

interface Endpoint {
  container: string;
  port: number;
}

function endpointOf(exports: JsonObject | undefined, key: string): Endpoint | undefined {
  const value = exports?.[key] as { container?: unknown; port?: unknown } | undefined;
  return typeof value?.container === 'string' && typeof value.port === 'number'
    ? { container: value.container, port: value.port }
    : undefined;
}

const metadataSchema = z.object({
  agentBaseUrl: z.string(),
  apiKeyVariable: z.string(),
  models: z.array(z.object({ name: z.string(), model: z.string(), credential: z.string() })),
  credentials: z.array(z.object({ name: z.string(), host: z.string() })),
  telemetry: z.boolean(),
});

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

export function createLitellmProvider(settings: LitellmProviderSettings = {}): LitellmProvider {
  const request = (_context: unknown, config: LitellmConfig): SidecarRequestV2[] => {
    const missing = config.credentials.filter((credential) => !credential.secret);
    if (missing.length > 0) {
      throw new KeywardError({
        code: 'INVALID_PROVIDER_CONFIG',
        providerId: LITELLM_PROVIDER_ID,
        message: `Invalid config for sidecar "litellm": ${missing.map((credential) => `credential "${credential.name}" has no secret; write its provider API key in "secret"`).join('; ')}`,
      });
    }
    return config.credentials.map((credential) => ({
      id: `credential-${credential.name}`,
      provider: SEALING_PROVIDER_ID,
      kind: 'sealed-credential',
      container: LITELLM_CONTAINER_NAME,
      payload: {
        name: `litellm-${credential.name}`,
        secret: credential.secret as string,
        allowedHosts: [credential.host],
        ...(credential.headerDst === undefined ? {} : { headerDst: credential.headerDst }),
        ...(credential.headerFmt === undefined ? {} : { headerFmt: credential.headerFmt }),
        tokenVariable: sealedTokenVariable(credential.name),
        authVariable: PROXY_PASSWORD_VARIABLE,
      },
    }));
  };

  const contribute = (
    context: SidecarContextV2,
    config: LitellmConfig,
    virtualKey?: string,
  ): SidecarContributionV2 => {
    const proxy = endpointOf(context.dependencies[SEALING_PROVIDER_ID]?.exports, 'proxy');
    if (!proxy) {
      throw new KeywardError({
        code: 'PROVIDER_CONTRACT_VIOLATION',
        providerId: LITELLM_PROVIDER_ID,
        message:
          'The tokenizer exported no proxy endpoint ({ proxy: { container, port } }); LiteLLM cannot reach its upstreams.',
      });
    }
    const collector = config.exportTraces
      ? endpointOf(context.dependencies[TELEMETRY_PROVIDER_ID]?.exports, 'otlpHttp')
      : undefined;
    const key = virtualKey ?? config.virtualKey ?? `sk-keyward-${hex(context.randomBytes(24))}`;
    const proxyAddress = context.addressOf(LITELLM_CONTAINER_NAME, proxy.container, proxy.port);
    const agentBaseUrl = `http://${context.addressOf('agent', LITELLM_CONTAINER_NAME, config.port)}`;
    const env: Record<string, string> = {
      // LiteLLM's own calls to itself and to the collector stay off the proxy.
      NO_PROXY: 'localhost,127.0.0.1',
      AIOHTTP_TRUST_ENV: 'True',
      HOME: '/tmp',
    };
    const connections = [
      { from: 'agent', to: LITELLM_CONTAINER_NAME, port: config.port },
      { from: LITELLM_CONTAINER_NAME, to: proxy.container, port: proxy.port },
    ];
    if (collector) {
      const collectorAddress = context.addressOf(LITELLM_CONTAINER_NAME, collector.container, collector.port);
      // The standard OTLP variables, which LiteLLM's `otel` callback reads before its own
      // OTEL_EXPORTER/OTEL_ENDPOINT; it appends /v1/traces to the base URL.
      env['OTEL_EXPORTER_OTLP_ENDPOINT'] = `http://${collectorAddress}`;
      env['OTEL_EXPORTER_OTLP_PROTOCOL'] = 'http/protobuf';
      env['OTEL_SERVICE_NAME'] = `${context.instanceName}-litellm`;
      // The SDK's batch processor waits 5 s by default; a second keeps traces close to live.
      env['OTEL_BSP_SCHEDULE_DELAY'] = '1000';
      // No prompts or completions in spans: with content capture on, LiteLLM also adds a span of
      // the raw provider request, whose headers hold the sealed token.
      env['OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT'] = 'NO_CONTENT';
      env['NO_PROXY'] = [...new Set(['localhost', '127.0.0.1', collectorAddress.replace(/:\d+$/, '')])].join(
        ',',
      );
      connections.push({ from: LITELLM_CONTAINER_NAME, to: collector.container, port: collector.port });
    }
    const metadata = {
      agentBaseUrl,
      apiKeyVariable: config.agentVariables.apiKey,
      models: config.models.map(({ name, model, credential }) => ({ name, model, credential })),
      credentials: config.credentials.map(({ name, host }) => ({ name, host })),
      telemetry: collector !== undefined,
      config: litellmRedactedConfig(config),
    };
    return {
      containers: [
        {
          name: LITELLM_CONTAINER_NAME,
          image: config.image ?? settings.defaultImage ?? LITELLM_DEFAULT_IMAGE,
          // The proxy password is LiteLLM's own secret, in its environment; the shell puts it in
          // HTTP_PROXY at start so it never appears in argv.
          command: [
            'sh',
            '-c',
            `export HTTP_PROXY="http://keyward:\${${PROXY_PASSWORD_VARIABLE}}@${proxyAddress}" http_proxy="http://keyward:\${${PROXY_PASSWORD_VARIABLE}}@${proxyAddress}"; exec litellm --config ${LITELLM_CONFIG_PATH} --host 0.0.0.0 --port ${config.port}`,
          ],
          env,
          ports: [{ name: 'http', containerPort: config.port, protocol: 'tcp' }],
          readiness: {
            type: 'http',
            port: config.port,
            path: '/health/liveliness',
            timeoutSeconds: 3,
            // LiteLLM imports for 40–90 s (about 2 min on a busy machine) before it listens.
            retries: 240,
          },
          security: { readOnlyRootFilesystem: true, dropAllCapabilities: true, noNewPrivileges: true },
          tmpfs: ['/tmp'],
          // Every upstream call goes through the tokenizer; LiteLLM needs no way out of its own.
          egress: { type: 'none' },
          resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
        },
      ],
      secrets: [
        {
          name: 'litellm-master-key',
          value: key,
          visibleTo: [LITELLM_CONTAINER_NAME],
          delivery: { type: 'env', variable: MASTER_KEY_VARIABLE },
        },
        {
          // The same key for the agent: it opens the gateway, never a provider.
          name: 'litellm-agent-key',
          value: key,
          visibleTo: ['agent'],
          agentSafe: true,
          delivery: { type: 'env', variable: config.agentVariables.apiKey },
        },
      ],
      files: [
        {
          container: LITELLM_CONTAINER_NAME,
          root: 'absolute',
          path: LITELLM_CONFIG_PATH,
          content: gatewayConfiguration({ config, telemetry: collector !== undefined }),
          mode: 0o444,
        },
      ],
      agentEnv: { [config.agentVariables.baseUrl]: `${agentBaseUrl}/v1` },
      connections,
      exports: { gateway: { container: LITELLM_CONTAINER_NAME, port: config.port } },
      metadata: metadata as unknown as JsonObject,
    };
  };

  return {
    specificationVersion: 'v2',
    id: LITELLM_PROVIDER_ID,
    displayName: 'LiteLLM gateway (keys sealed by the tokenizer)',
    configSchema: litellmConfigSchema,
    capabilities: { networkModes: ['proxy-only', 'open'] },
    requires: [{ provider: SEALING_PROVIDER_ID }, { provider: TELEMETRY_PROVIDER_ID, optional: true }],
    request,
    contribute: (context, config) => contribute(context, config),
    redactConfig: litellmRedactedConfig,
    rotation: {
      // Provider keys are sealed through the tokenizer at deploy; changing them means a redeploy.
      changeSchema: z.never() as unknown as z.ZodType<never>,
      rotate: () => {
        throw new KeywardError({
          code: 'ROTATION_NOT_SUPPORTED',
          providerId: LITELLM_PROVIDER_ID,
          message: 'LiteLLM provider keys are sealed at deploy; redeploy the instance with the new key.',
        });
      },
      // The tokenizer or the collector moved: rebuild from what was stored, with the same virtual key.
      refresh: (context, current) => {
        const stored = litellmConfigSchema.safeParse((current.metadata as { config?: unknown }).config);
        const key = current.secrets['litellm-master-key'];
        if (!stored.success || !key) {
          throw new KeywardError({
            code: 'ROTATION_FAILED',
            providerId: LITELLM_PROVIDER_ID,
            message: 'The stored LiteLLM config or its virtual key is missing; redeploy the instance.',
          });
        }
        return contribute(context, stored.data, key);
      },
    },
    verification: {
      checks: (context) => {
        const metadata = metadataSchema.safeParse(context.metadata);
        if (!metadata.success)
          return gatewayChecks({
            baseUrl: 'http://invalid.invalid',
            apiKeyVariable: 'OPENAI_API_KEY',
            models: [],
          });
        return gatewayChecks({
          baseUrl: metadata.data.agentBaseUrl,
          apiKeyVariable: metadata.data.apiKeyVariable,
          models: metadata.data.models.map((model) => model.name),
        });
      },
    },
    view: {
      schema: z.object({
        agentBaseUrl: z.string(),
        models: z.array(z.object({ name: z.string(), model: z.string(), credential: z.string() })),
        credentials: z.array(z.object({ name: z.string(), host: z.string() })),
        telemetry: z.boolean(),
      }),
      build: (state) => {
        const metadata = metadataSchema.parse(state.metadata);
        return {
          agentBaseUrl: metadata.agentBaseUrl,
          models: metadata.models,
          credentials: metadata.credentials,
          telemetry: metadata.telemetry,
        };
      },
    },
    redactionPatterns: [/^KEYWARD_SEALED_/, /^LITELLM_MASTER_KEY$/],
  };
}

/** The config without provider keys or the virtual key. */
function litellmRedactedConfig(config: LitellmConfig): JsonObject {
  const { virtualKey: _virtualKey, ...rest } = config;
  return JSON.parse(
    JSON.stringify({
      ...rest,
      credentials: config.credentials.map(({ secret: _secret, ...credential }) => credential),
    }),
  ) as JsonObject;
}
