import * as z from 'zod';
import type { SidecarContributionV1 } from '../spec/v1/contribution-v1.js';
import type { SidecarContextV1, SidecarProviderV1 } from '../spec/v1/sidecar-provider-v1.js';

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

/**
 * A well-behaved sidecar provider for tests: one container, one secret only it
 * sees, one agent-safe token, a file for the agent. Override any member to make
 * it misbehave (the conformance suite's own tests do exactly that).
 */
export function createMockSidecarProvider(
  overrides: Partial<SidecarProviderV1<MockSidecarConfig, { token?: string }>> & { id?: string } = {},
): SidecarProviderV1<MockSidecarConfig, { token?: string }> {
  const id = overrides.id ?? 'mock';
  const contribute = (context: SidecarContextV1, config: MockSidecarConfig): SidecarContributionV1 => {
    const agentToken = hex(context.randomBytes(16));
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
            runAsUser: 65532,
            readOnlyRootFilesystem: true,
            dropAllCapabilities: true,
            noNewPrivileges: true,
          },
          egress: 'internet',
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
          delivery: { type: 'env', variable: `${id.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_TOKEN` },
        },
      ],
      files: [
        {
          container: 'agent',
          root: 'skills',
          path: `${id}/SKILL.md`,
          content: `# ${id}\n\nCall ${context.addressOf(id, config.port)} with the token in $${id.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_TOKEN.\n`,
        },
      ],
      agentEnv: {
        [`${id.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_URL`]: context.addressOf(id, config.port),
      },
      metadata: { port: config.port, hasSecret: config.secret !== undefined },
    };
  };
  return {
    specificationVersion: 'v1',
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
    },
    ...overrides,
  } as SidecarProviderV1<MockSidecarConfig, { token?: string }>;
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
