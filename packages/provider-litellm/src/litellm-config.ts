import * as z from 'zod';

/** The seed installer's pin (openclaw-installer §1.4): published before the malicious 1.82.7/1.82.8 releases. */
export const LITELLM_DEFAULT_IMAGE = 'ghcr.io/berriai/litellm:v1.82.3-stable.patch.2';

const portSchema = z
  .number({ error: 'must be a port number' })
  .int({ error: 'must be a whole number' })
  .min(1, { error: 'must be between 1 and 65535' })
  .max(65535, { error: 'must be between 1 and 65535' });

const namePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const hostPattern =
  /^(?=.{1,253}(:|$))([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*(:([1-9][0-9]{0,4}))?$/;
const headerNamePattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const environmentNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const litellmCredentialSchema = z
  .object({
    /** A DNS label, referenced by models (`openai`, `anthropic`). */
    name: z.string().regex(namePattern, { error: 'must be a DNS label such as "openai"' }),
    /** The provider API key. It goes only into a token the tokenizer seals; LiteLLM never sees it. */
    secret: z.string().min(1, { error: 'must not be empty: the provider API key' }).optional(),
    /**
     * The provider API's host, with `:port` when it is not 443 (the tokenizer speaks TLS to
     * that port); the sealed key works there and nowhere else.
     */
    host: z
      .string()
      .regex(hostPattern, {
        error: 'must be a host name such as "api.openai.com" or "api.example.test:8443" (no scheme, no path)',
      })
      .refine(
        (host) => {
          const port = host.includes(':') ? Number(host.slice(host.indexOf(':') + 1)) : undefined;
          return port === undefined || (port <= 65535 && port !== 443);
        },
        { error: 'the port must be 1–65535 and not 443: write "api.openai.com" for 443' },
      ),
    /** Where the provider expects the key. */
    headerDst: z
      .string()
      .regex(headerNamePattern, { error: 'must be an HTTP header name such as "x-api-key"' })
      .optional(),
    headerFmt: z
      .string()
      .refine((value) => value.split('%s').length === 2, {
        error: 'must contain "%s" exactly once, for example "Bearer %s"',
      })
      .optional(),
  })
  .strict();

export const litellmModelSchema = z
  .object({
    /** What the agent asks for (`model` in its requests). */
    name: z
      .string()
      .min(1, { error: 'must not be empty: the model name the agent uses, for example "gpt-4o"' }),
    /** LiteLLM's model string: `<provider>/<model>`, for example "openai/gpt-4o" or "anthropic/claude-sonnet-4-5". */
    model: z
      .string()
      .regex(/^[a-z0-9_-]+\/\S+$/, { error: 'must be "<provider>/<model>", for example "openai/gpt-4o"' }),
    /** The credential (by name) whose sealed key this model uses. */
    credential: z.string().regex(namePattern, { error: 'must name a credential of this sidecar' }),
    /** Path on the credential's host, when the provider needs one (OpenAI: "/v1"). */
    apiPath: z.string().startsWith('/', { error: 'must start with "/", for example "/v1"' }).optional(),
  })
  .strict();

export const litellmConfigSchema = z
  .object({
    image: z.string().min(1, { error: 'must not be empty' }).optional(),
    port: portSchema.default(4000),
    models: z.array(litellmModelSchema).min(1, { error: 'add at least one model' }).max(50),
    credentials: z
      .array(litellmCredentialSchema)
      .min(1, { error: 'add the provider key the models use' })
      .max(20),
    /**
     * The agent's key to the gateway (LiteLLM's master key). Generated when absent; either way
     * it only opens the gateway, never a provider.
     */
    virtualKey: z.string().min(16, { error: 'must be at least 16 characters' }).optional(),
    /** Extra LiteLLM settings merged into its config (`litellm_settings`, `router_settings`). */
    settings: z
      .object({
        litellm_settings: z.record(z.string(), z.unknown()).optional(),
        router_settings: z.record(z.string(), z.unknown()).optional(),
      })
      // Only these two are merged; keyward owns the rest of LiteLLM's config.
      .strict()
      .optional(),
    /**
     * With a collector there: LiteLLM's `otel` callback (its spans, children of the caller's
     * traceparent) and `forward_traceparent_to_llm_provider` (the traceparent on to the
     * tokenizer). The image must hold the OpenTelemetry SDK and OTLP exporter (the official image
     * and keyward's local one do; without them LiteLLM refuses to start with the callback:
     * "Could not build the 'otel' callback"): set false for an image without them.
     */
    exportTraces: z.boolean().default(true),
    /** The agent's variables for the gateway (an OpenAI-compatible API). */
    agentVariables: z
      .object({
        baseUrl: z.string().regex(environmentNamePattern).default('OPENAI_BASE_URL'),
        apiKey: z.string().regex(environmentNamePattern).default('OPENAI_API_KEY'),
      })
      .strict()
      .default({ baseUrl: 'OPENAI_BASE_URL', apiKey: 'OPENAI_API_KEY' }),
  })
  .strict()
  .superRefine((config, context) => {
    const names = new Set<string>();
    config.credentials.forEach((credential, index) => {
      if (names.has(credential.name)) {
        context.addIssue({
          code: 'custom',
          path: ['credentials', index, 'name'],
          message: `"${credential.name}" is used twice`,
        });
      }
      names.add(credential.name);
    });
    const modelNames = new Set<string>();
    config.models.forEach((model, index) => {
      if (!names.has(model.credential)) {
        context.addIssue({
          code: 'custom',
          path: ['models', index, 'credential'],
          message: `no credential "${model.credential}"; use one of: ${[...names].join(', ')}`,
        });
      }
      if (modelNames.has(model.name)) {
        context.addIssue({
          code: 'custom',
          path: ['models', index, 'name'],
          message: `"${model.name}" is used twice`,
        });
      }
      modelNames.add(model.name);
    });
  });

export type LitellmConfig = z.output<typeof litellmConfigSchema>;
export type LitellmConfigInput = z.input<typeof litellmConfigSchema>;
export type LitellmCredential = LitellmConfig['credentials'][number];
export type LitellmModel = LitellmConfig['models'][number];
