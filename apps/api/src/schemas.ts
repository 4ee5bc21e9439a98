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
  415: json(ErrorSchema, 'The body is not sent as JSON (UNSUPPORTED_MEDIA_TYPE)'),
  429: json(ErrorSchema, 'Too many requests (RATE_LIMITED)'),
  501: json(ErrorSchema, 'The target or sidecar cannot do this (UNSUPPORTED_CAPABILITY)'),
  502: json(ErrorSchema, 'The runtime failed (RUNTIME_ERROR, DEPLOY_FAILED, …)'),
  503: json(
    ErrorSchema,
    'The runtime is unreachable (RUNTIME_UNAVAILABLE), or the server cannot write its data directory (DATA_DIRECTORY_FULL, DATA_DIRECTORY_UNWRITABLE)',
  ),
} as const;

export { json as jsonContent };

export const HealthSchema = z.object({ status: z.literal('ok'), version: z.string() }).openapi('Health');

const NetworkModeSchema = z.enum(['proxy-only', 'open']);

export const TargetCapabilitiesSchema = z.object({
  networkModes: z.array(NetworkModeSchema),
  /** Container egress kinds the target can enforce (`none`, `internet`, `destinations`). */
  egress: z.array(z.string()),
  rotation: z.boolean(),
  render: z.boolean(),
  /** Runs commands in an instance: the self-test needs it. */
  exec: z.boolean(),
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

const JsonSchemaSchema = z
  .record(z.string(), z.unknown())
  .openapi({ description: 'A JSON Schema (draft 2020-12) generated from the provider’s zod schema.' });

export const SidecarDescriptionSchema = z
  .object({
    id: z.string(),
    displayName: z.string().optional(),
    networkModes: z.array(NetworkModeSchema),
    /** Providers it builds on (`optional` ones only when present). */
    requires: z.array(z.object({ provider: z.string(), optional: z.boolean() })),
    rotation: z.boolean(),
    verification: z.boolean(),
    /** Extra paths under /api/instances/{id}/ that stand for its page. */
    routeAliases: z.array(z.string()),
    /** Shared contracts its page follows (`credentials`: the credential list `keyward creds` manages). */
    roles: z.array(z.string()),
    errorCodes: z.record(z.string(), z.object({ httpStatus: z.number(), description: z.string() })),
    schemas: z.object({
      /** `sidecars.<id>` of an instance spec. */
      config: JsonSchemaSchema,
      /** Body of PUT /api/instances/{id}/sidecars/<id>. */
      change: JsonSchemaSchema.optional(),
      /** Answer of GET /api/instances/{id}/sidecars/<id>. */
      view: JsonSchemaSchema.optional(),
      /** `options.<id>` of POST /api/instances/{id}/verify. */
      verifyOptions: JsonSchemaSchema.optional(),
    }),
  })
  .openapi('SidecarDescription');

export const ProvidersSchema = z
  .object({
    sidecars: z.array(SidecarDescriptionSchema),
    targets: z.array(
      z.object({
        id: z.string(),
        displayName: z.string().optional(),
        capabilities: TargetCapabilitiesSchema,
        schemas: z.object({ options: JsonSchemaSchema }),
      }),
    ),
    /** Plugins (and built-in providers) that failed to load, with the reason. */
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
  sidecars: z.array(
    z.object({
      providerId: z.string(),
      metadata: z.record(z.string(), z.unknown()),
      exports: z.record(z.string(), z.unknown()),
    }),
  ),
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
    reconciliation: z
      .object({
        outcome: z.enum(['completed', 'rolled-back', 'unchanged', 'incomplete']),
        message: z.string(),
        time: z.string(),
      })
      .optional()
      .openapi({
        description:
          'Set when the process running the job stopped before it ended and a later start finished it, or when a failed job left its rollback to a runtime that had stopped answering and the server did it once the runtime answered: what the target had, and what was done.',
      }),
  })
  .openapi('Job');

export const JobEventSchema = z
  .object({
    type: z.enum(['progress', 'log', 'result', 'error', 'gap']),
    sequence: z.number().int(),
    time: z.string(),
    step: z.string().optional(),
    status: z.enum(['started', 'succeeded', 'failed', 'info']).optional(),
    message: z.string().optional(),
    result: z.unknown().optional(),
    error: z.object({ code: z.string(), message: z.string(), step: z.string().optional() }).optional(),
    dropped: z.number().int().optional(),
  })
  .openapi('JobEvent');

/**
 * One Server-Sent Event as OpenAPI 3.1 describes a `text/event-stream` item: `data` is JSON
 * (`contentMediaType`) following the named components (`contentSchema`).
 */
function serverSentEvent(names: [string, ...string[]], dataComponents: string[], withId: boolean) {
  const refs = dataComponents.map((name) => ({ $ref: `#/components/schemas/${name}` }));
  const data = z.string().openapi({
    contentMediaType: 'application/json',
    contentSchema: refs.length === 1 ? refs[0] : { anyOf: refs },
  } as Record<string, unknown>);
  return z.object({
    event: z.enum(names),
    data,
    ...(withId ? { id: z.string().openapi({ description: 'The event sequence, for Last-Event-ID' }) } : {}),
  });
}

/** An event of `GET /jobs/{id}/events`: its name is the job event's `type`. */
export const JobStreamEventSchema = serverSentEvent(
  ['progress', 'log', 'result', 'error', 'gap'],
  ['JobEvent'],
  true,
).openapi('JobStreamEvent');

export const LifecycleResultSchema = z
  .object({ name: z.string(), target: z.string(), status: z.enum(['running', 'stopped', 'deleted']) })
  .openapi('LifecycleResult');

export const LogLineSchema = z.object({
  container: z.string(),
  stream: z.enum(['stdout', 'stderr']),
  line: z.string(),
});

export const LogsSchema = z.object({ lines: z.array(LogLineSchema) }).openapi('Logs');

export const LogLineComponentSchema = LogLineSchema.openapi('LogLine');
export const EmptyObjectSchema = z.object({}).openapi('EmptyObject');

/** An event of `GET /instances/{id}/logs?follow=true`: `log` lines, then `end` (or `error`). */
export const LogStreamEventSchema = serverSentEvent(
  ['log', 'end', 'error'],
  ['LogLine', 'EmptyObject', 'Error'],
  false,
).openapi('LogStreamEvent');

/** A sidecar's page: its provider's view (see `SidecarView_<id>` in the components). */
export const SidecarViewSchema = z.record(z.string(), z.unknown()).openapi('SidecarView', {
  description:
    "The sidecar provider's view (`view.build`), or `{providerId, metadata, exports}` for a provider without one; `rotationJobId` while a change runs.",
});

/** A sidecar change, validated by the provider's change schema (see `SidecarChange_<id>`). */
export const SidecarChangeSchema = z
  .record(z.string(), z.unknown())
  .openapi('SidecarChange', { description: "Validated by the sidecar provider's `rotation.changeSchema`." });

export const VerifyRequestSchema = z
  .looseObject({
    options: z.record(z.string(), z.record(z.string(), z.unknown())).optional().openapi({
      description: "Options by sidecar id, each validated by that sidecar's verify options schema.",
    }),
  })
  .openapi('VerifyRequest', {
    description:
      'Any other top-level field goes to every sidecar whose verify options schema takes it (the fields older clients send, such as `allowedUrl`); a field no sidecar takes is a 400.',
  });

export const VerifyCheckReportSchema = z.object({
  name: z.string(),
  /** The sidecar that owns the check, or the target's id for the target's own checks. */
  providerId: z.string(),
  description: z.string(),
  passed: z.boolean(),
  evidence: z.string(),
});

export const VerifyReportSchema = z
  .object({ passed: z.boolean(), checks: z.array(VerifyCheckReportSchema) })
  .openapi('VerifyReport');

const RenderSecretValuesSchema = z.enum(['omit', 'include', 'separate']);

export const RenderedSecretSchema = z
  .object({
    kind: z.string(),
    name: z.string(),
    namespace: z.string().optional(),
    keys: z.array(
      z.object({
        key: z.string(),
        providerId: z.string(),
        readers: z.array(z.string()),
        agentSafe: z.boolean(),
      }),
    ),
  })
  .openapi('RenderedSecret');

export const RenderSchema = z
  .object({
    target: z.string(),
    instance: z.string(),
    secretValues: RenderSecretValuesSchema,
    content: z.string().openapi({
      description: 'The manifests. Secret values only with secretValues=include.',
    }),
    secrets: z.array(RenderedSecretSchema).openapi({
      description: 'The objects that hold secret values, with their keys and readers; never a value.',
    }),
    secretsContent: z.string().optional().openapi({
      description:
        'With secretValues=separate: the Secrets with their values, from the same plan as content.',
    }),
  })
  .openapi('Render');

export const RenderQuerySchema = z.object({
  secretValues: RenderSecretValuesSchema.optional().openapi({
    description:
      'omit (default): Secrets without values, safe to commit. include: values in place (holds the open key; never commit). separate: values apart, in secretsContent.',
  }),
});

export const InstanceParamsSchema = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'my-agent' }),
});

export const TargetQuerySchema = z.object({
  target: z
    .string()
    .optional()
    .openapi({ description: 'Only look for the instance on this target (default: every target).' }),
});
