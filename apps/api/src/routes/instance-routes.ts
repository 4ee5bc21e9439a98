import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { instanceSpecSchema, isKeywardError, type LogLineV2, redact } from '@keyward/core';
import { streamSSE } from 'hono/streaming';
import type { InstanceOperations, VerifyRequest } from '../instance-operations.js';
import {
  EmptyObjectSchema,
  errorResponses,
  InstanceDetailSchema,
  InstanceListSchema,
  InstanceParamsSchema,
  JobAcceptedSchema,
  jsonContent,
  LifecycleResultSchema,
  LogLineComponentSchema,
  LogStreamEventSchema,
  LogsSchema,
  RenderQuerySchema,
  RenderSchema,
  TargetQuerySchema,
  VerifyReportSchema,
  VerifyRequestSchema,
} from '../schemas.js';
import { validationHook } from './route-hooks.js';

// The words a boolean query takes (in any case): one list for the validator and the document.
const truthyWords = ['true', '1', 'yes', 'on', 'y', 'enabled'];
const falsyWords = ['false', '0', 'no', 'off', 'n', 'disabled'];
const booleanQuery = z
  .stringbool({ truthy: truthyWords, falsy: falsyWords })
  .optional()
  .openapi({ type: 'string', enum: [...truthyWords, ...falsyWords] });

const list = createRoute({
  method: 'get',
  path: '/instances',
  tags: ['instances'],
  summary: 'Instances on every target (one runtime call per target)',
  responses: { 200: jsonContent(InstanceListSchema, 'Instances'), 401: errorResponses[401] },
});

/**
 * Links from a deploy's answer to the operations on the instance it makes: a client generated from
 * the document (and schemathesis' stateful phase) can follow a deploy with them.
 */
const linksToTheInstance = Object.fromEntries(
  (
    [
      ['GetInstance', '/api/instances/{id}', 'get'],
      ['InstanceLogs', '/api/instances/{id}/logs', 'get'],
      ['VerifyInstance', '/api/instances/{id}/verify', 'post'],
      ['RenderInstance', '/api/instances/{id}/render', 'get'],
      ['StartInstance', '/api/instances/{id}/start', 'post'],
      ['StopInstance', '/api/instances/{id}/stop', 'post'],
      ['RestartInstance', '/api/instances/{id}/restart', 'post'],
      ['DeleteInstance', '/api/instances/{id}', 'delete'],
    ] as const
  ).map(([name, path, method]) => [
    name,
    {
      operationRef: `#/paths/${path.replaceAll('/', '~1')}/${method}`,
      parameters: { 'path.id': '$response.body#/instance', 'query.target': '$response.body#/target' },
    },
  ]),
);

const deploy = createRoute({
  method: 'post',
  path: '/instances',
  tags: ['instances'],
  summary: 'Deploy an instance; progress streams from the job',
  description:
    'Validates the spec and every sidecar config (with each provider schema) and composes the plan before answering, so bad input is a 400. The apply runs in a job: follow `eventsUrl`.',
  request: {
    query: z.object({ replace: booleanQuery }),
    body: { required: true, content: { 'application/json': { schema: instanceSpecSchema } } },
  },
  responses: {
    202: { ...jsonContent(JobAcceptedSchema, 'Deploy accepted'), links: linksToTheInstance },
    400: errorResponses[400],
    401: errorResponses[401],
    409: errorResponses[409],
    415: errorResponses[415],
    429: errorResponses[429],
    501: errorResponses[501],
    503: errorResponses[503],
  },
});

const get = createRoute({
  method: 'get',
  path: '/instances/{id}',
  tags: ['instances'],
  summary: 'One instance, redacted',
  request: { params: InstanceParamsSchema, query: TargetQuerySchema },
  responses: {
    200: jsonContent(InstanceDetailSchema, 'The instance'),
    401: errorResponses[401],
    404: errorResponses[404],
  },
});

function lifecycleRoute(action: 'start' | 'stop' | 'restart') {
  return createRoute({
    method: 'post',
    path: `/instances/{id}/${action}`,
    tags: ['instances'],
    summary: `${action[0]!.toUpperCase()}${action.slice(1)} the instance's containers`,
    request: { params: InstanceParamsSchema, query: TargetQuerySchema },
    responses: {
      200: jsonContent(LifecycleResultSchema, 'Done'),
      401: errorResponses[401],
      404: errorResponses[404],
      502: errorResponses[502],
    },
  });
}

const remove = createRoute({
  method: 'delete',
  path: '/instances/{id}',
  tags: ['instances'],
  summary: 'Delete the instance and everything labelled with it',
  request: {
    params: InstanceParamsSchema,
    query: TargetQuerySchema.extend({
      keepVolumes: booleanQuery,
    }),
  },
  responses: {
    200: jsonContent(LifecycleResultSchema, 'Deleted'),
    401: errorResponses[401],
    404: errorResponses[404],
    409: errorResponses[409],
    502: errorResponses[502],
  },
});

const logs = createRoute({
  method: 'get',
  path: '/instances/{id}/logs',
  tags: ['instances'],
  summary: 'Container logs; `follow=true` streams them as Server-Sent Events',
  description:
    'Without follow: JSON `{lines}`. With follow: `log` events ({container, stream, line}), then `end`; an `error` event if the runtime fails mid-stream.',
  request: {
    params: InstanceParamsSchema,
    query: TargetQuerySchema.extend({
      follow: booleanQuery,
      container: z.string().optional(),
      tail: z.coerce.number().int().min(0).max(10_000).optional(),
    }),
  },
  responses: {
    200: {
      content: {
        'application/json': { schema: LogsSchema },
        'text/event-stream': { schema: LogStreamEventSchema },
      },
      description: 'Log lines',
    },
    401: errorResponses[401],
    404: errorResponses[404],
  },
});

const verify = createRoute({
  method: 'post',
  path: '/instances/{id}/verify',
  tags: ['instances'],
  summary: "Run the self-test: the target's checks and every sidecar's, from inside the instance",
  description:
    'Each sidecar contributes its own checks (its verify options under `options.<provider id>`), the target adds its isolation checks; the target runs them and each provider judges its own. `passed` is true when every check passed.',
  request: {
    params: InstanceParamsSchema,
    query: TargetQuerySchema,
    body: { required: false, content: { 'application/json': { schema: VerifyRequestSchema } } },
  },
  responses: {
    200: jsonContent(VerifyReportSchema, 'Checks (passed may be false)'),
    400: errorResponses[400],
    401: errorResponses[401],
    404: errorResponses[404],
    415: errorResponses[415],
    501: errorResponses[501],
  },
});

const renderInstance = createRoute({
  method: 'get',
  path: '/instances/{id}/render',
  tags: ['instances'],
  summary: 'Manifests of a deployed instance, where the target has manifests',
  request: { params: InstanceParamsSchema, query: TargetQuerySchema },
  responses: {
    200: jsonContent(
      RenderSchema,
      'Manifests; Secrets without their values (a recomposition makes new ones)',
    ),
    401: errorResponses[401],
    404: errorResponses[404],
    501: errorResponses[501],
  },
});

const renderSpec = createRoute({
  method: 'post',
  path: '/render',
  tags: ['instances'],
  summary: 'Manifests of an instance spec, without deploying it',
  request: {
    query: RenderQuerySchema,
    body: { required: true, content: { 'application/json': { schema: instanceSpecSchema } } },
  },
  responses: {
    200: jsonContent(
      RenderSchema,
      'Manifests; Secrets without their values unless secretValues says otherwise',
    ),
    400: errorResponses[400],
    401: errorResponses[401],
    415: errorResponses[415],
    501: errorResponses[501],
  },
});

export function createInstanceRoutes(operations: InstanceOperations) {
  const lifecycle = (action: 'start' | 'stop' | 'restart') => lifecycleRoute(action);
  const app = new OpenAPIHono({ defaultHook: validationHook });
  // Named only inside the log stream's `contentSchema`, so registered by hand.
  app.openAPIRegistry.register('LogLine', LogLineComponentSchema);
  app.openAPIRegistry.register('EmptyObject', EmptyObjectSchema);
  return app
    .openapi(list, async (c) => c.json(await operations.listInstances(), 200))
    .openapi(deploy, async (c) => {
      const { job, warnings } = await operations.deploy(c.req.valid('json'), {
        replace: c.req.valid('query').replace ?? false,
      });
      return c.json(
        {
          jobId: job.id,
          deployId: job.id,
          instance: job.instance,
          target: job.target,
          eventsUrl: `/api/jobs/${job.id}/events`,
          warnings,
        },
        202,
      );
    })
    .openapi(get, async (c) =>
      c.json(await operations.getInstance(c.req.valid('param').id, c.req.valid('query').target), 200),
    )
    .openapi(lifecycle('start'), async (c) =>
      c.json(await operations.lifecycle(c.req.valid('param').id, 'start', c.req.valid('query').target), 200),
    )
    .openapi(lifecycle('stop'), async (c) =>
      c.json(await operations.lifecycle(c.req.valid('param').id, 'stop', c.req.valid('query').target), 200),
    )
    .openapi(lifecycle('restart'), async (c) =>
      c.json(
        await operations.lifecycle(c.req.valid('param').id, 'restart', c.req.valid('query').target),
        200,
      ),
    )
    .openapi(remove, async (c) => {
      const query = c.req.valid('query');
      return c.json(
        await operations.remove(c.req.valid('param').id, {
          removeVolumes: !query.keepVolumes,
          ...(query.target ? { target: query.target } : {}),
        }),
        200,
      );
    })
    .openapi(logs, async (c) => {
      const query = c.req.valid('query');
      const name = c.req.valid('param').id;
      const abort = new AbortController();
      const source = await operations.logs(name, {
        follow: query.follow ?? false,
        ...(query.container ? { container: query.container } : {}),
        ...(query.tail === undefined ? {} : { tail: query.tail }),
        ...(query.target ? { target: query.target } : {}),
        signal: abort.signal,
      });
      if (!query.follow) {
        const lines: LogLineV2[] = [];
        for await (const line of source) lines.push(line);
        return c.json(
          { lines: query.tail === undefined ? lines : lines.slice(Math.max(0, lines.length - query.tail)) },
          200,
        );
      }
      return streamSSE(c, async (stream) => {
        stream.onAbort(() => abort.abort());
        try {
          for await (const line of source) {
            await stream.writeSSE({ event: 'log', data: JSON.stringify(line) });
            if (abort.signal.aborted) break;
          }
          await stream.writeSSE({ event: 'end', data: '{}' });
        } catch (error) {
          if (abort.signal.aborted) return;
          await stream.writeSSE({
            event: 'error',
            data: JSON.stringify(
              redact(
                redact({
                  error: {
                    code: isKeywardError(error) ? error.code : 'RUNTIME_ERROR',
                    message: error instanceof Error ? error.message : String(error),
                  },
                }),
                operations.redactor,
              ),
            ),
          });
        }
      });
    })
    .openapi(verify, async (c) => {
      let options: VerifyRequest = {};
      try {
        options = (c.req.valid('json') ?? {}) as VerifyRequest;
      } catch {
        // No body: every verify option keeps its default.
      }
      return c.json(
        await operations.verify(c.req.valid('param').id, options, c.req.valid('query').target),
        200,
      );
    })
    .openapi(renderInstance, async (c) =>
      c.json(await operations.renderInstance(c.req.valid('param').id, c.req.valid('query').target), 200),
    )
    .openapi(renderSpec, async (c) =>
      c.json(await operations.renderSpec(c.req.valid('json'), c.req.valid('query').secretValues), 200),
    );
}
