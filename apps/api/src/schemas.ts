import { z } from '@hono/zod-openapi';

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'INSTANCE_NOT_FOUND' }),
      message: z.string(),
      providerId: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .openapi('Error');

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { 'application/json': { schema } },
  description,
});

export const errorResponses = {
  400: json(ErrorSchema, 'Bad input (INVALID_INPUT, INVALID_INSTANCE_SPEC, INVALID_PROVIDER_CONFIG, …)'),
  401: json(ErrorSchema, 'Missing or wrong bearer token (UNAUTHORIZED)'),
  404: json(ErrorSchema, 'Not found (INSTANCE_NOT_FOUND, NOT_FOUND)'),
  409: json(ErrorSchema, 'Conflict (INSTANCE_EXISTS, ROTATION_IN_PROGRESS)'),
  429: json(ErrorSchema, 'Too many requests (RATE_LIMITED)'),
  501: json(ErrorSchema, 'The target or sidecar cannot do this (UNSUPPORTED_CAPABILITY)'),
  502: json(ErrorSchema, 'The runtime failed (RUNTIME_ERROR, DEPLOY_FAILED, …)'),
  503: json(ErrorSchema, 'The runtime is unreachable (RUNTIME_UNAVAILABLE)'),
} as const;

export { json as jsonContent };

export const HealthSchema = z.object({ status: z.literal('ok'), version: z.string() }).openapi('Health');

const NetworkModeSchema = z.enum(['proxy-only', 'open']);

export const TargetCapabilitiesSchema = z.object({
  networkModes: z.array(NetworkModeSchema),
  rotation: z.boolean(),
  render: z.boolean(),
  verify: z.boolean(),
  logsFollow: z.boolean(),
});

export const DetectionSchema = z.object({
  available: z.boolean(),
  strategy: z.string().optional(),
  runtime: z
    .object({ name: z.string(), version: z.string().optional(), endpoint: z.string().optional() })
    .optional(),
  reason: z.string().optional(),
  hint: z.string().optional(),
});

export const TargetSchema = z
  .object({
    id: z.string(),
    displayName: z.string().optional(),
    capabilities: TargetCapabilitiesSchema,
    detection: DetectionSchema,
  })
  .openapi('Target');

export const LoadErrorSchema = z.object({ source: z.string(), code: z.string(), message: z.string() });

export const ProvidersSchema = z
  .object({
    sidecars: z.array(
      z.object({
        id: z.string(),
        displayName: z.string().optional(),
        networkModes: z.array(NetworkModeSchema),
        rotation: z.boolean(),
      }),
    ),
    targets: z.array(
      z.object({
        id: z.string(),
        displayName: z.string().optional(),
        capabilities: TargetCapabilitiesSchema,
      }),
    ),
    loadErrors: z.array(LoadErrorSchema),
  })
  .openapi('Providers');

const ContainerStatusSchema = z.object({
  name: z.string(),
  providerId: z.string(),
  image: z.string(),
  state: z.string(),
  running: z.boolean(),
});

export const InstanceSummarySchema = z
  .object({
    name: z.string(),
    target: z.string(),
    state: z.enum(['running', 'stopped', 'partial', 'failed', 'unknown']),
    networkMode: NetworkModeSchema,
    containers: z.array(ContainerStatusSchema),
    agentUrl: z.string().optional(),
    createdAt: z.string().optional(),
  })
  .openapi('InstanceSummary');

export const InstanceDetailSchema = InstanceSummarySchema.extend({
  redactedSpec: z.record(z.string(), z.unknown()),
  sidecars: z.array(z.object({ providerId: z.string(), metadata: z.record(z.string(), z.unknown()) })),
}).openapi('InstanceDetail');

export const InstanceListSchema = z
  .object({
    instances: z.array(InstanceSummarySchema),
    /** Targets that could not be listed; the others still are. */
    errors: z.array(z.object({ target: z.string(), code: z.string(), message: z.string() })),
  })
  .openapi('InstanceList');

export const WarningSchema = z.object({
  code: z.string(),
  message: z.string(),
  providerId: z.string().optional(),
});

export const JobAcceptedSchema = z
  .object({
    jobId: z.string(),
    /** The seed installer's name for the same id, kept so its clients keep working. */
    deployId: z.string(),
    instance: z.string(),
    target: z.string(),
    eventsUrl: z.string(),
    warnings: z.array(WarningSchema),
  })
  .openapi('JobAccepted');

export const JobSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['deploy', 'rotate']),
    instance: z.string(),
    target: z.string(),
    status: z.enum(['running', 'succeeded', 'failed']),
    createdAt: z.string(),
    finishedAt: z.string().optional(),
    failedStep: z.string().optional(),
    error: z.object({ code: z.string(), message: z.string(), step: z.string().optional() }).optional(),
  })
  .openapi('Job');

export const LifecycleResultSchema = z
  .object({ name: z.string(), target: z.string(), status: z.enum(['running', 'stopped', 'deleted']) })
  .openapi('LifecycleResult');

export const LogLineSchema = z.object({
  container: z.string(),
  stream: z.enum(['stdout', 'stderr']),
  line: z.string(),
});

export const LogsSchema = z.object({ lines: z.array(LogLineSchema) }).openapi('Logs');

export const TokenizerCredentialSchema = z.object({
  name: z.string(),
  allowedHosts: z.array(z.string()),
  headerDst: z.string().optional(),
  headerFmt: z.string().optional(),
});

export const TokenizerViewSchema = z
  .object({
    enabled: z.boolean(),
    credentials: z.array(TokenizerCredentialSchema),
    /** The running rotation's job, when one is running. */
    rotationJobId: z.string().optional(),
  })
  .openapi('TokenizerCredentials');

// Documents the seed installer's contract; the tokenizer provider's own change
// schema does the real validation, so everything here stays permissive.
export const TokenizerChangeSchema = z
  .looseObject({
    credentials: z.array(
      z.looseObject({
        name: z.string(),
        secret: z
          .string()
          .optional()
          .openapi({ description: 'The credential; "" (or absent) keeps the current one.' }),
        allowedHosts: z.union([z.array(z.string()), z.string()]).optional(),
        headerDst: z.string().optional(),
        headerFmt: z.string().optional(),
      }),
    ),
  })
  .openapi('TokenizerChange', {
    description: 'The full new credential list; it replaces the current set.',
  });

export const SidecarStateSchema = z
  .object({
    providerId: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    rotationJobId: z.string().optional(),
  })
  .openapi('SidecarState');

export const VerifyOptionsSchema = z
  .object({
    allowedUrl: z.string().optional(),
    unboundUrl: z.string().optional(),
    credential: z.string().optional(),
    directUrl: z.string().optional(),
    // Not a secret: anyone with the public seal key can make one. Defaults to one the API seals.
    selfSealedToken: z.string().optional(),
  })
  .strict()
  .openapi('VerifyOptions');

export const VerifyResultSchema = z
  .object({
    passed: z.boolean(),
    checks: z.array(z.object({ name: z.string(), passed: z.boolean(), evidence: z.string() })),
  })
  .openapi('VerifyResult');

export const RenderSchema = z
  .object({ target: z.string(), instance: z.string(), content: z.string() })
  .openapi('Render');

export const InstanceParamsSchema = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'my-agent' }),
});

export const TargetQuerySchema = z.object({
  target: z
    .string()
    .optional()
    .openapi({ description: 'Only look for the instance on this target (default: every target).' }),
});
