import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { KeywardError } from '@keyward/core';
import type { Context } from 'hono';
import type { InstanceOperations } from '../instance-operations.js';
import type { Logger } from '../logger.js';
import {
  componentName,
  describeSidecar,
  schemaReference as ref,
  routeAliases,
} from '../provider-descriptions.js';
import {
  errorResponses,
  InstanceParamsSchema,
  JobAcceptedSchema,
  jsonContent,
  SidecarChangeSchema,
  SidecarViewSchema,
  TargetQuerySchema,
} from '../schemas.js';
import { validationHook } from './route-hooks.js';

/** The change body; a body that is not JSON is the caller's mistake, not a 500. */
async function changeBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new KeywardError({ code: 'INVALID_INPUT', message: 'The change must be a JSON body.' });
  }
}

const rotationResponses = {
  202: jsonContent(
    JobAcceptedSchema,
    'Change accepted; its job ends with the result or the rolled-back failure',
  ),
  400: errorResponses[400],
  401: errorResponses[401],
  404: errorResponses[404],
  409: errorResponses[409],
  415: errorResponses[415],
  429: errorResponses[429],
  501: errorResponses[501],
} as const;

const SidecarParamsSchema = InstanceParamsSchema.extend({
  providerId: z.string().openapi({ param: { name: 'providerId', in: 'path' }, example: 'litellm' }),
});

function sidecarGet(installed: string[]) {
  return createRoute({
    method: 'get',
    path: '/instances/{id}/sidecars/{providerId}',
    tags: ['sidecars'],
    summary: "A sidecar's page: its provider's view (never secret values)",
    description: `The answer follows the provider's view schema: ${installed.map((id) => `\`SidecarView_${id}\``).join(', ') || 'no sidecar is installed'} in the components.`,
    request: { params: SidecarParamsSchema, query: TargetQuerySchema },
    responses: {
      200: jsonContent(SidecarViewSchema, 'The sidecar view'),
      400: errorResponses[400],
      401: errorResponses[401],
      404: errorResponses[404],
    },
  });
}

function sidecarPut(installed: string[]) {
  return createRoute({
    method: 'put',
    path: '/instances/{id}/sidecars/{providerId}',
    tags: ['sidecars'],
    summary: "Change a sidecar after install (a rotation job), validated by its provider's change schema",
    description: `The body follows the provider's change schema: ${installed.map((id) => `\`SidecarChange_${id}\``).join(', ') || 'no installed sidecar supports changes'} in the components. Sidecars that depend on this one follow in the same job when its exports change.`,
    request: {
      params: SidecarParamsSchema,
      query: TargetQuerySchema,
      body: { required: true, content: { 'application/json': { schema: SidecarChangeSchema } } },
    },
    responses: rotationResponses,
  });
}

export interface SidecarRoutesOptions {
  logger: Logger;
}

/**
 * `GET/PUT /instances/{id}/sidecars/{providerId}`, and the same under each alias a provider
 * declares (`routeAliases`). The OpenAPI document carries every installed sidecar's config,
 * change, view and verify options schemas, so a UI can build its forms from it.
 */
export function createSidecarRoutes(operations: InstanceOperations, options: SidecarRoutesOptions) {
  const sidecars = operations.registry.listSidecars();
  const app = new OpenAPIHono({ defaultHook: validationHook });

  for (const provider of sidecars) {
    const { schemas } = describeSidecar(provider);
    app.openAPIRegistry.registerComponent('schemas', componentName('Config', provider.id), schemas.config);
    if (schemas.change)
      app.openAPIRegistry.registerComponent('schemas', componentName('Change', provider.id), schemas.change);
    if (schemas.view)
      app.openAPIRegistry.registerComponent('schemas', componentName('View', provider.id), schemas.view);
    if (schemas.verifyOptions) {
      app.openAPIRegistry.registerComponent(
        'schemas',
        componentName('VerifyOptions', provider.id),
        schemas.verifyOptions,
      );
    }
  }

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

  const { aliases, refused } = routeAliases(operations.registry);
  for (const item of refused) {
    options.logger.log('warn', 'sidecar route alias not served', { ...item });
  }
  for (const [alias, provider] of aliases) {
    const path = `/instances/{id}/${alias}`;
    const parameters = [
      { name: 'id', in: 'path' as const, required: true, schema: { type: 'string' as const } },
      {
        name: 'target',
        in: 'query' as const,
        required: false,
        schema: { type: 'string' as const },
        description: 'Only look for the instance on this target (default: every target).',
      },
    ];
    const viewSchema = provider.view ? ref(componentName('View', provider.id)) : ref('SidecarView');
    app.openAPIRegistry.registerPath({
      method: 'get',
      path,
      tags: ['sidecars'],
      summary: `Alias of GET /instances/{id}/sidecars/${provider.id}`,
      parameters,
      responses: {
        200: { description: 'The sidecar view', content: { 'application/json': { schema: viewSchema } } },
        401: errorResponses[401],
        404: errorResponses[404],
      },
    });
    if (provider.rotation) {
      app.openAPIRegistry.registerPath({
        method: 'put',
        path,
        tags: ['sidecars'],
        summary: `Alias of PUT /instances/{id}/sidecars/${provider.id}`,
        parameters,
        request: {
          body: {
            required: true,
            content: { 'application/json': { schema: ref(componentName('Change', provider.id)) } },
          },
        },
        responses: rotationResponses,
      });
    }
    const honoPath = `/instances/:id/${alias}`;
    app.get(honoPath, async (c: Context) =>
      c.json(await operations.sidecarView(c.req.param('id') ?? '', provider.id, c.req.query('target')), 200),
    );
    app.put(honoPath, async (c: Context) =>
      c.json(
        await accepted(c.req.param('id') ?? '', provider.id, await changeBody(c), c.req.query('target')),
        202,
      ),
    );
  }

  const withViews = sidecars.filter((provider) => provider.view).map((provider) => provider.id);
  const withChanges = sidecars.filter((provider) => provider.rotation).map((provider) => provider.id);
  return app
    .openapi(sidecarGet(withViews), async (c) => {
      const { id, providerId } = c.req.valid('param');
      return c.json(await operations.sidecarView(id, providerId, c.req.valid('query').target), 200);
    })
    .openapi(sidecarPut(withChanges), async (c) => {
      const { id, providerId } = c.req.valid('param');
      // The provider validates the raw body with its own change schema; the route schema only documents it.
      return c.json(await accepted(id, providerId, await changeBody(c), c.req.valid('query').target), 202);
    });
}
