import * as z from 'zod';
import { dnsLabelMaxLength, dnsLabelPattern } from './dns-label.js';
import { KeywardError } from './errors/keyward-error.js';
import { networkModes } from './spec/v1/network-mode.js';

const environmentNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A DNS-1123 label: what Kubernetes, podman and docker all accept as a name. */
export const dnsLabelSchema = z
  .string({ error: 'must be a string' })
  .min(1, { error: 'must not be empty' })
  .max(dnsLabelMaxLength, { error: `must be at most ${dnsLabelMaxLength} characters (a DNS-1123 label)` })
  .regex(dnsLabelPattern, {
    error:
      'must be a DNS-1123 label: lower-case letters, digits and "-", starting and ending with a letter or digit (for example "my-agent")',
  });

/**
 * zod leaves a record's `__proto__` key out of its output without a word (prototype safety): the
 * entry would vanish from the spec. Refuse it instead, naming the field.
 */
function withoutPrototypeKey<T extends z.ZodType>(record: T) {
  return z.preprocess((value, context) => {
    if (value !== null && typeof value === 'object' && Object.hasOwn(value, '__proto__')) {
      context.issues.push({
        code: 'custom',
        path: ['__proto__'],
        message: '"__proto__" cannot be a key here; rename it',
        input: value,
      });
    }
    return value;
  }, record);
}

const portSchema = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .min(1, { error: 'must be between 1 and 65535' })
  .max(65535, { error: 'must be between 1 and 65535' });

export const agentSpecSchema = z
  .object({
    image: z
      .string({ error: 'is required: the agent image, for example "ghcr.io/openclaw/openclaw:latest"' })
      .min(1, {
        error: 'must not be empty',
      }),
    /** The port the agent listens on; required because every agent image has its own. */
    port: portSchema,
    /** Non-secret environment. Credentials belong in a sidecar (the tokenizer), never here. */
    env: withoutPrototypeKey(
      z.record(
        z.string().regex(environmentNamePattern, {
          error: 'environment variable names must match [A-Za-z_][A-Za-z0-9_]*',
        }),
        z.string({ error: 'environment values must be strings' }),
      ),
    )
      // The key rule in the API's OpenAPI document too (its generator drops a record's key schema).
      .meta({ propertyNames: { pattern: environmentNamePattern.source } })
      .default({}),
    command: z.array(z.string()).min(1, { error: 'must have at least one element when given' }).optional(),
    /** Where the agent reads skills (SKILL.md files sidecars write); needed by sidecars that teach the agent. */
    skillsDirectory: z.string().regex(/^\//, { error: 'must be an absolute path' }).optional(),
    /** Writable directories that outlive the container (the agent's home, its workspace). */
    stateDirectories: z
      .array(z.string().regex(/^\//, { error: 'must be an absolute path' }))
      .max(8, { error: 'at most 8 state directories' })
      .default([]),
    /**
     * The agent's root filesystem is read-only by default (it writes only to `stateDirectories`
     * and a tmpfs `/tmp`); `false` for images that write elsewhere, with a plan warning.
     */
    readOnlyRootFilesystem: z.boolean({ error: 'must be true or false' }).default(true),
  })
  .strict();

export const networkSpecSchema = z
  .object({
    egress: z.enum(networkModes, { error: 'must be "proxy-only" (default) or "open"' }).default('proxy-only'),
    /** Deprecated: moved to `targetOptions.hostPort` (the local target's option); still read. */
    hostPort: portSchema.nullable().optional(),
    /** Deprecated: moved to `targetOptions.hostAddress`; still read. */
    hostAddress: z.string().optional(),
  })
  .strict();

export const instanceSpecSchema = z
  .object({
    apiVersion: z.literal('keyward.dev/v1', { error: 'must be "keyward.dev/v1"' }).default('keyward.dev/v1'),
    name: dnsLabelSchema,
    target: dnsLabelSchema.default('local'),
    agent: agentSpecSchema,
    /** Options of the target (local: hostPort, hostAddress; k8s: namespace, context); the target validates them. */
    targetOptions: withoutPrototypeKey(z.record(z.string(), z.unknown())).default({}),
    network: networkSpecSchema.default({ egress: 'proxy-only' }),
    /** Per-sidecar config keyed by provider id; each provider validates its own part. */
    sidecars: withoutPrototypeKey(z.record(dnsLabelSchema, z.unknown())).default({}),
  })
  .strict()
  .transform(({ network, targetOptions, ...rest }) => {
    // v1 specs kept the local target's host port and address under `network`.
    const moved: Record<string, unknown> = { ...targetOptions };
    if (network.hostPort != null && moved['hostPort'] === undefined) moved['hostPort'] = network.hostPort;
    if (network.hostAddress !== undefined && moved['hostAddress'] === undefined)
      moved['hostAddress'] = network.hostAddress;
    return { ...rest, targetOptions: moved, network: { egress: network.egress } };
  });

export type InstanceSpec = z.output<typeof instanceSpecSchema>;
export type InstanceSpecInput = z.input<typeof instanceSpecSchema>;

/** Turns zod issues into one message per issue that names the field and the rule. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix = ''): string[] {
  return issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      return `${path || '(root)'}: unknown field(s) ${issue.keys.map((key) => `"${key}"`).join(', ')}; remove them or check the spelling`;
    }
    if (issue.code === 'invalid_key') {
      // zod reports a bad record key as "Invalid key in record"; the rule is in the nested issues.
      return `${path || '(root)'}: ${issue.issues.map((nested) => nested.message).join('; ')}`;
    }
    return `${path || '(root)'}: ${issue.message}`;
  });
}

export function parseInstanceSpec(input: unknown): InstanceSpec {
  const result = instanceSpecSchema.safeParse(input);
  if (!result.success) {
    const problems = formatIssues(result.error.issues);
    throw new KeywardError({
      code: 'INVALID_INSTANCE_SPEC',
      message: `Invalid instance spec: ${problems.join('; ')}`,
      details: { problems },
    });
  }
  return result.data;
}
