import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { ApiError } from '../api-error.js';
import type { InstanceOperations } from '../instance-operations.js';
import { describeProviders } from '../provider-descriptions.js';
import {
  errorResponses,
  HealthSchema,
  JobEventSchema,
  JobSchema,
  JobStreamEventSchema,
  jsonContent,
  ProvidersSchema,
  TargetSchema,
} from '../schemas.js';
import { VERSION } from '../version.js';
import { validationHook } from './route-hooks.js';

const health = createRoute({
  method: 'get',
  path: '/health',
  tags: ['system'],
  summary: 'Liveness; the only route without a token',
  security: [],
  responses: { 200: jsonContent(HealthSchema, 'The server is up') },
});

const targets = createRoute({
  method: 'get',
  path: '/targets',
  tags: ['system'],
  summary: 'Installed targets and whether their runtime is reachable',
  responses: {
    200: jsonContent(z.object({ targets: z.array(TargetSchema) }), 'Targets'),
    401: errorResponses[401],
  },
});

const providers = createRoute({
  method: 'get',
  path: '/providers',
  tags: ['system'],
  summary: 'Installed sidecar and target providers with their schemas, and plugins that failed to load',
  responses: { 200: jsonContent(ProvidersSchema, 'Providers'), 401: errorResponses[401] },
});

const jobList = createRoute({
  method: 'get',
  path: '/jobs',
  tags: ['jobs'],
  summary: 'Recent deploy and rotation jobs',
  responses: { 200: jsonContent(z.object({ jobs: z.array(JobSchema) }), 'Jobs'), 401: errorResponses[401] },
});

const JobParamsSchema = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });

const jobGet = createRoute({
  method: 'get',
  path: '/jobs/{id}',
  tags: ['jobs'],
  summary: 'One job',
  request: { params: JobParamsSchema },
  responses: { 200: jsonContent(JobSchema, 'The job'), 401: errorResponses[401], 404: errorResponses[404] },
});

const jobEvents = createRoute({
  method: 'get',
  path: '/jobs/{id}/events',
  tags: ['jobs'],
  summary: 'The job as Server-Sent Events, replayed from the first line',
  description:
    'Events: `progress` ({step, status, message}), `log`, `gap` (events dropped from a long job), then exactly one of `result` or `error` ({code, message, step}), after which the stream ends. Each event has an `id` (its sequence); reconnect with `Last-Event-ID` or `?after=` to resume.',
  request: {
    params: JobParamsSchema,
    query: z.object({ after: z.coerce.number().int().min(0).optional() }),
    headers: z.object({ 'last-event-id': z.string().optional() }),
  },
  responses: {
    200: { content: { 'text/event-stream': { schema: JobStreamEventSchema } }, description: 'Event stream' },
    401: errorResponses[401],
    404: errorResponses[404],
  },
});

function jobNotFound(id: string): ApiError {
  return new ApiError('NOT_FOUND', `No job "${id}"; finished jobs are kept for a while, then forgotten.`);
}

export function createSystemRoutes(operations: InstanceOperations) {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  // Named only inside the event stream's `contentSchema`, so registered by hand.
  app.openAPIRegistry.register('JobEvent', JobEventSchema);
  return app
    .openapi(health, (c) => c.json({ status: 'ok' as const, version: VERSION }, 200))
    .openapi(targets, async (c) => c.json({ targets: await operations.listTargets() }, 200))
    .openapi(providers, (c) => c.json(describeProviders(operations.registry), 200))
    .openapi(jobList, (c) => c.json({ jobs: operations.jobs.list() }, 200))
    .openapi(jobGet, (c) => {
      const job = operations.jobs.get(c.req.valid('param').id);
      if (!job) throw jobNotFound(c.req.valid('param').id);
      return c.json(job, 200);
    })
    .openapi(jobEvents, (c) => {
      const { id } = c.req.valid('param');
      if (!operations.jobs.get(id)) throw jobNotFound(id);
      const lastEventId = Number.parseInt(c.req.valid('header')['last-event-id'] ?? '', 10);
      const afterSequence = Number.isFinite(lastEventId) ? lastEventId : (c.req.valid('query').after ?? 0);
      return streamSSE(c, async (stream) => {
        const abort = new AbortController();
        stream.onAbort(() => abort.abort());
        // A comment line now and then keeps proxies from closing a quiet stream (image pulls take a while).
        const keepAlive = setInterval(
          () => void stream.write(': keepalive\n\n').catch(() => abort.abort()),
          15_000,
        );
        try {
          for await (const event of operations.jobs.follow(id, { afterSequence, signal: abort.signal })) {
            await stream.writeSSE({
              id: String(event.sequence),
              event: event.type,
              data: JSON.stringify(event),
            });
          }
        } finally {
          clearInterval(keepAlive);
        }
      });
    });
}
