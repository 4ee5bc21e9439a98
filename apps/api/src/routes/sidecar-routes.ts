import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { ApiError } from '../api-error.js';
import { InstanceOperations } from '../instance-operations.js';
import {
  errorResponses,
  InstanceParamsSchema,
  JobAcceptedSchema,
  jsonContent,
  SidecarStateSchema,
  TargetQuerySchema,
  TokenizerChangeSchema,
  TokenizerViewSchema,
} from '../schemas.js';
import { validationHook } from './route-hooks.js';

const rotationResponses = {
  202: jsonContent(
    JobAcceptedSchema,
    'Rotation accepted; its job ends with the result or the rolled-back failure',
  ),
  400: errorResponses[400],
  401: errorResponses[401],
  404: errorResponses[404],
  409: errorResponses[409],
  429: errorResponses[429],
  501: errorResponses[501],
} as const;

const tokenizerGet = createRoute({
  method: 'get',
  path: '/instances/{id}/tokenizer',
  tags: ['credentials'],
  summary: 'Tokenizer credentials of an instance: names, hosts, header options; never values',
  request: { params: InstanceParamsSchema, query: TargetQuerySchema },
  responses: {
    200: jsonContent(TokenizerViewSchema, 'Credentials'),
    401: errorResponses[401],
    404: errorResponses[404],
  },
});

const tokenizerPut = createRoute({
  method: 'put',
  path: '/instances/{id}/tokenizer',
  tags: ['credentials'],
  summary: 'Replace the credential set; `secret: ""` keeps a credential as it is',
  request: {
    params: InstanceParamsSchema,
    query: TargetQuerySchema,
    body: { required: true, content: { 'application/json': { schema: TokenizerChangeSchema } } },
  },
  responses: rotationResponses,
});

const SidecarParamsSchema = InstanceParamsSchema.extend({
  providerId: z.string().openapi({ param: { name: 'providerId', in: 'path' }, example: 'tokenizer' }),
});

const sidecarGet = createRoute({
  method: 'get',
  path: '/instances/{id}/sidecars/{providerId}',
  tags: ['credentials'],
  summary: "A sidecar's metadata (never secret values)",
  request: { params: SidecarParamsSchema, query: TargetQuerySchema },
  responses: {
    200: jsonContent(SidecarStateSchema, 'Sidecar metadata'),
    401: errorResponses[401],
    404: errorResponses[404],
  },
});

const sidecarPut = createRoute({
  method: 'put',
  path: '/instances/{id}/sidecars/{providerId}',
  tags: ['credentials'],
  summary: "Change a sidecar after install, validated by its provider's change schema",
  request: {
    params: SidecarParamsSchema,
    query: TargetQuerySchema,
    body: {
      required: true,
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()).openapi('SidecarChange') } },
    },
  },
  responses: rotationResponses,
});

export function createSidecarRoutes(operations: InstanceOperations) {
  const accepted = async (name: string, providerId: string, change: unknown, target: string | undefined) => {
    const { job } = await operations.rotate(name, providerId, change, target);
    return {
      jobId: job.id,
      deployId: job.id,
      instance: job.instance,
      target: job.target,
      eventsUrl: `/api/jobs/${job.id}/events`,
      warnings: [],
    };
  };
  return new OpenAPIHono({ defaultHook: validationHook })
    .openapi(tokenizerGet, async (c) => {
      const { detail, runningJob } = await operations.sidecarState(
        c.req.valid('param').id,
        'tokenizer',
        c.req.valid('query').target,
      );
      return c.json(
        {
          ...InstanceOperations.tokenizerCredentials(detail),
          ...(runningJob?.kind === 'rotate' ? { rotationJobId: runningJob.id } : {}),
        },
        200,
      );
    })
    .openapi(tokenizerPut, async (c) =>
      c.json(
        // The provider validates the raw body with its own schema; the route schema only documents it.
        await accepted(c.req.valid('param').id, 'tokenizer', await c.req.json(), c.req.valid('query').target),
        202,
      ),
    )
    .openapi(sidecarGet, async (c) => {
      const { id, providerId } = c.req.valid('param');
      const { sidecar, runningJob } = await operations.sidecarState(
        id,
        providerId,
        c.req.valid('query').target,
      );
      if (!sidecar) {
        throw new ApiError('NOT_FOUND', `Instance "${id}" has no sidecar "${providerId}".`);
      }
      return c.json(
        {
          providerId,
          metadata: sidecar.metadata,
          ...(runningJob?.kind === 'rotate' ? { rotationJobId: runningJob.id } : {}),
        },
        200,
      );
    })
    .openapi(sidecarPut, async (c) => {
      const { id, providerId } = c.req.valid('param');
      return c.json(await accepted(id, providerId, await c.req.json(), c.req.valid('query').target), 202);
    });
}
