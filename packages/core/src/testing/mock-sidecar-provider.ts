import { createHmac } from 'node:crypto';
import * as z from 'zod';
import type { SidecarContributionV2 } from '../spec/v2/contribution-v2.js';
import type { SidecarContextV2, SidecarProviderV2 } from '../spec/v2/sidecar-provider-v2.js';

export const mockSidecarConfigSchema = z
  .object({
    /** A raw credential the mock keeps only inside its own secret. */
    secret: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).default(4100),
    image: z.string().default('localhost/keyward-mock-sidecar:test'),
  })
  .strict();

export type MockSidecarConfig = z.output<typeof mockSidecarConfigSchema>;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function variablePrefix(id: string): string {
  return id.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/**
 * A well-behaved sidecar provider for tests: one container the agent reaches, one secret only
 * it sees, one agent-safe token, a file for the agent, an export. Override any member to make
 * it misbehave (the conformance suite's own tests do exactly that).
 */
export function createMockSidecarProvider(
  overrides: Partial<SidecarProviderV2<MockSidecarConfig, { token?: string }>> & { id?: string } = {},
): SidecarProviderV2<MockSidecarConfig, { token?: string }> {
  const id = overrides.id ?? 'mock';
  const prefix = variablePrefix(id);
  const contribute = (context: SidecarContextV2, config: MockSidecarConfig): SidecarContributionV2 => {
    const agentToken = hex(context.randomBytes(16));
    const address = context.addressOf('agent', id, config.port);
    return {
      containers: [
        {
          name: id,
          image: config.image,
          command: ['mock-sidecar', '--listen', `0.0.0.0:${config.port}`],
          env: { MOCK_SECRET_FILE: '/run/keyward/mock-secret' },
          ports: [{ name: 'http', containerPort: config.port }],
          readiness: { type: 'http', port: config.port, path: '/health' },
          security: {
            readOnlyRootFilesystem: true,
            dropAllCapabilities: true,
            noNewPrivileges: true,
          },
          egress: { type: 'internet' },
        },
      ],
      secrets: [
        ...(config.secret
          ? [
              {
                name: `${id}-secret`,
                value: config.secret,
                visibleTo: [id],
                delivery: { type: 'file' as const, path: '/run/keyward/mock-secret', mode: 0o400 },
              },
            ]
          : []),
        {
          name: `${id}-agent-token`,
          value: agentToken,
          visibleTo: ['agent'],
          agentSafe: true,
          delivery: { type: 'env', variable: `${prefix}_TOKEN` },
        },
      ],
      files: [
        {
          container: 'agent',
          root: 'skills',
          path: `${id}/SKILL.md`,
          content: `# ${id}\n\nCall http://${address} with the token in $${prefix}_TOKEN.\n`,
        },
      ],
      agentEnv: { [`${prefix}_URL`]: `http://${address}` },
      connections: [{ from: 'agent', to: id, port: config.port }],
      exports: { endpoint: { container: id, port: config.port } },
      metadata: { port: config.port, hasSecret: config.secret !== undefined },
    };
  };
  return {
    specificationVersion: 'v2',
    id,
    displayName: 'Mock sidecar',
    configSchema: mockSidecarConfigSchema,
    capabilities: { networkModes: ['proxy-only', 'open'] },
    contribute,
    redactConfig: (config) => ({
      port: config.port,
      image: config.image,
      hasSecret: config.secret !== undefined,
    }),
    rotation: {
      changeSchema: z.object({ token: z.string().optional() }).strict(),
      rotate: (context, current) => {
        const port = typeof current.metadata['port'] === 'number' ? current.metadata['port'] : 4100;
        return contribute(context, { port, image: 'localhost/keyward-mock-sidecar:test' });
      },
      nextRedactedConfig: (saved) => saved,
    },
    verification: {
      checks: (context) => [
        {
          name: `${id}-reachable`,
          description: `The agent reaches the ${id} sidecar.`,
          exec: { container: 'agent', command: ['mock-check', id], timeoutSeconds: 5 },
          judge: (result) => ({
            passed: result.exitCode === 0,
            evidence: `exit ${result.exitCode} (${context.networkMode})`,
          }),
        },
      ],
    },
    ...overrides,
  } as SidecarProviderV2<MockSidecarConfig, { token?: string }>;
}

/** What the mock sealing provider answers: a named value to hand, sealed, to the asker's container. */
export const mockSealedCredentialRequestSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
    secret: z.string().min(1),
    allowedHosts: z.array(z.string().min(1)).min(1),
    tokenVariable: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
  })
  .strict();

export const mockSealingConfigSchema = z
  .object({
    port: z.number().int().min(1).max(65535).default(4300),
    image: z.string().default('localhost/keyward-mock-sealer:test'),
  })
  .strict();

/**
 * A stand-in for a sealing proxy (the tokenizer's role): answers `sealed-credential` requests
 * with a value that is not the raw one (an HMAC under a key that only its own container sees),
 * visible to the asking container alone, and exports its proxy endpoint.
 */
export function createMockSealingProvider(
  overrides: Partial<SidecarProviderV2<z.output<typeof mockSealingConfigSchema>, never>> & {
    id?: string;
  } = {},
): SidecarProviderV2<z.output<typeof mockSealingConfigSchema>, never> {
  const id = overrides.id ?? 'sealer';
  return {
    specificationVersion: 'v2',
    id,
    displayName: 'Mock sealing proxy',
    configSchema: mockSealingConfigSchema,
    capabilities: { networkModes: ['proxy-only', 'open'] },
    answers: { 'sealed-credential': mockSealedCredentialRequestSchema },
    contribute: (context, config) => {
      const key = hex(context.randomBytes(16));
      const answers = context.requests.map((request) => {
        const payload = mockSealedCredentialRequestSchema.parse(request.payload);
        const sealed = `sealed.${createHmac('sha256', key).update(payload.secret).digest('hex')}`;
        return {
          name: `${id}-for-${request.from}-${payload.name}`,
          value: sealed,
          visibleTo: [request.container],
          forRequest: request.id,
          delivery: { type: 'env' as const, variable: payload.tokenVariable },
          metadata: { from: request.from, name: payload.name, hosts: payload.allowedHosts },
        };
      });
      return {
        containers: [
          {
            name: id,
            image: config.image,
            ports: [{ name: 'proxy', containerPort: config.port }],
            egress: { type: 'internet' },
          },
        ],
        secrets: [
          {
            name: `${id}-key`,
            value: key,
            visibleTo: [id],
            delivery: { type: 'file', path: '/run/keyward/sealer-key', mode: 0o400 },
          },
          ...answers.map(({ metadata: _metadata, ...secret }) => secret),
        ],
        files: [],
        agentEnv: { SEALER_PROXY_URL: `http://${context.addressOf('agent', id, config.port)}` },
        connections: [{ from: 'agent', to: id, port: config.port }],
        exports: { proxy: { container: id, port: config.port } },
        metadata: { port: config.port, answered: answers.map((answer) => answer.metadata) },
      };
    },
    redactConfig: (config) => ({ port: config.port, image: config.image }),
    ...overrides,
  } as SidecarProviderV2<z.output<typeof mockSealingConfigSchema>, never>;
}

export const mockCredentialConsumerConfigSchema = z
  .object({
    /** The raw upstream key; it leaves this provider only inside a request to the sealing provider. */
    apiKey: z.string().min(6),
    upstreamHost: z.string().min(1).default('api.example.test'),
    port: z.number().int().min(1).max(65535).default(4400),
    image: z.string().default('localhost/keyward-mock-gateway:test'),
  })
  .strict();

/**
 * A stand-in for a gateway that needs an upstream key (LiteLLM's role): it requires the sealing
 * provider, asks it to seal its key for its own container, reaches its proxy, and is reached by
 * the agent. Its container never holds the raw key.
 */
export function createMockCredentialConsumerProvider(
  options: { id?: string; sealer?: string } = {},
): SidecarProviderV2<z.output<typeof mockCredentialConsumerConfigSchema>, never> {
  const id = options.id ?? 'gateway';
  const sealer = options.sealer ?? 'sealer';
  return {
    specificationVersion: 'v2',
    id,
    displayName: 'Mock gateway that consumes sealed credentials',
    configSchema: mockCredentialConsumerConfigSchema,
    capabilities: { networkModes: ['proxy-only', 'open'] },
    requires: [{ provider: sealer }],
    request: (_context, config) => [
      {
        id: 'upstream-key',
        provider: sealer,
        kind: 'sealed-credential',
        container: id,
        payload: {
          name: 'upstream',
          secret: config.apiKey,
          allowedHosts: [config.upstreamHost],
          tokenVariable: 'UPSTREAM_SEALED_KEY',
        },
      },
    ],
    contribute: (context, config) => {
      const proxy = context.dependencies[sealer]?.exports['proxy'] as
        | { container: string; port: number }
        | undefined;
      if (!proxy) throw new Error(`${id}: the ${sealer} provider exported no proxy endpoint`);
      return {
        containers: [
          {
            name: id,
            image: config.image,
            env: {
              HTTP_PROXY: `http://${context.addressOf(id, proxy.container, proxy.port)}`,
              UPSTREAM_BASE: `http://${config.upstreamHost}`,
            },
            ports: [{ name: 'http', containerPort: config.port }],
            egress: { type: 'none' },
          },
        ],
        secrets: [],
        files: [],
        agentEnv: { GATEWAY_URL: `http://${context.addressOf('agent', id, config.port)}` },
        connections: [
          { from: 'agent', to: id, port: config.port },
          { from: id, to: proxy.container, port: proxy.port },
        ],
        exports: {},
        metadata: { upstreamHost: config.upstreamHost, port: config.port },
      };
    },
    redactConfig: (config) => ({ upstreamHost: config.upstreamHost, port: config.port, image: config.image }),
  };
}

/** A deterministic `randomBytes` for plans that must compare equal. */
export function createSeededRandomBytes(seed = 1): (length: number) => Uint8Array {
  let state = seed >>> 0 || 1;
  return (length) => {
    const bytes = new Uint8Array(length);
    for (let index = 0; index < length; index++) {
      // xorshift32: enough for distinct, repeatable test values; never for real keys.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      bytes[index] = state & 0xff;
    }
    return bytes;
  };
}
