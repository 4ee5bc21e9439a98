import { createHash } from 'node:crypto';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { ProviderRegistry, SecretRedactor } from '@keyward/core';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { ApiError, toErrorResponse } from './api-error.js';
import { InstanceOperations } from './instance-operations.js';
import { JobManager } from './jobs/job-manager.js';
import { createJsonLogger, type Logger } from './logger.js';
import { withInstalledSidecars } from './openapi-document.js';
import { createInstanceRoutes } from './routes/instance-routes.js';
import { createSidecarRoutes } from './routes/sidecar-routes.js';
import { createSystemRoutes } from './routes/system-routes.js';
import { createTokenFileSource, tokensMatch } from './security/api-token.js';
import { type RateLimit, RateLimiter } from './security/rate-limiter.js';
import { VERSION } from './version.js';
import { createWebRoutes } from './web-routes.js';

export interface CreateAppOptions {
  registry: ProviderRegistry;
  /**
   * The bearer token, or a function returning the current one. When absent it
   * is read from `<dataDirectory>/api-token` (and re-read when that file changes).
   */
  token?: string | (() => string);
  dataDirectory?: string;
  jobs?: JobManager;
  logger?: Logger;
  /** Origins allowed to call the API from a browser. Default: none (same origin only). */
  allowedOrigins?: string[];
  /** Largest accepted request body. Default: 1 MiB. */
  bodyLimitBytes?: number;
  /**
   * Per client (API token): `requests` counts every authenticated request, `deploy` and
   * `rotation` the deploys and sidecar changes. Defaults: 600, 20 and 20 per minute.
   */
  rateLimits?: { requests?: RateLimit; deploy?: RateLimit; rotation?: RateLimit };
  detectTimeoutMilliseconds?: number;
  /** Injectable randomness for deterministic plans in tests. */
  randomBytes?: (length: number) => Uint8Array;
  /**
   * Where the server registers the secret values it handles (composition, rotation, request
   * bodies) so responses and logs can redact them. Default: core's process-wide redactor.
   */
  redactor?: SecretRedactor;
  /** For rate limits; injectable for tests. */
  now?: () => number;
  /** The built web UI served at `/` (apps/web/dist); absent: `/` says how to build it. */
  webDirectory?: string;
  /** The longest pause between reconciliation passes while something is left. Default 30 s. */
  reconcileRetryMilliseconds?: number;
}

const defaultRateLimits = {
  requests: { limit: 600, windowMilliseconds: 60_000 },
  deploy: { limit: 20, windowMilliseconds: 60_000 },
  rotation: { limit: 20, windowMilliseconds: 60_000 },
} satisfies Record<string, RateLimit>;

type RateLimitGroup = keyof typeof defaultRateLimits;

/** The caller's identity for rate limits: a digest of its token, never the token itself. */
function clientIdentity(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url').slice(0, 22);
}

function tokenSource(options: CreateAppOptions): () => string {
  const { token, dataDirectory } = options;
  if (typeof token === 'function') return token;
  if (typeof token === 'string') return () => token;
  if (dataDirectory) return createTokenFileSource(dataDirectory);
  throw new Error('createApp needs a token or a dataDirectory holding one');
}

function requestOrigin(url: string): string {
  return new URL(url).origin;
}

/**
 * The keyward API as a Hono app: test it with `app.request()`, serve it with
 * `startServer()`. Every route but `/api/health` needs the bearer token.
 */
export function createApp(options: CreateAppOptions) {
  const logger = options.logger ?? createJsonLogger(options.redactor ? { redactor: options.redactor } : {});
  const jobs = options.jobs ?? new JobManager(options.redactor ? { redactor: options.redactor } : {});
  const operations = new InstanceOperations({
    registry: options.registry,
    jobs,
    logger,
    ...(options.detectTimeoutMilliseconds
      ? { detectTimeoutMilliseconds: options.detectTimeoutMilliseconds }
      : {}),
    ...(options.randomBytes ? { randomBytes: options.randomBytes } : {}),
    ...(options.redactor ? { redactor: options.redactor } : {}),
    ...(options.reconcileRetryMilliseconds
      ? { reconcileRetryMilliseconds: options.reconcileRetryMilliseconds }
      : {}),
  });
  const currentToken = tokenSource(options);
  const allowedOrigins = new Set(options.allowedOrigins ?? []);
  const limiter = new RateLimiter(options.now);

  const clients = new WeakMap<object, string>();
  const rateLimited = (group: RateLimitGroup, methods?: string[]): MiddlewareHandler => {
    const rule = options.rateLimits?.[group] ?? defaultRateLimits[group];
    return async (c, next) => {
      const client = clients.get(c.req.raw);
      if (client && (!methods || methods.includes(c.req.method))) {
        const decision = limiter.take(`${client}:${group}`, rule);
        if (!decision.allowed) {
          const what = group === 'requests' ? 'requests' : `${group} requests`;
          throw new ApiError(
            'RATE_LIMITED',
            `Too many ${what} with this API token: at most ${rule.limit} per ${Math.round(rule.windowMilliseconds / 1000)} s; retry in ${decision.retryAfterSeconds} s.`,
            { 'Retry-After': String(decision.retryAfterSeconds) },
          );
        }
      }
      await next();
    };
  };

  const app = new OpenAPIHono();

  app.onError((error, c) => {
    const { status, body } = toErrorResponse(error, operations.redactor);
    if (status >= 500) logger.log('error', 'request failed', { path: c.req.path, error });
    if (error instanceof ApiError)
      for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
    if (status === 401) c.header('WWW-Authenticate', 'Bearer realm="keyward"');
    return c.json(body, status);
  });
  app.notFound((c) => {
    const { status, body } = toErrorResponse(
      new ApiError('NOT_FOUND', `No route ${c.req.method} ${c.req.path}.`),
    );
    return c.json(body, status);
  });

  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    logger.log('info', 'request', {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      milliseconds: Math.round(performance.now() - started),
    });
  });

  // Strict CORS: a browser page from another origin is refused outright unless
  // allow-listed; same-origin requests and non-browser clients carry no such Origin.
  app.use('*', async (c, next) => {
    const origin = c.req.header('origin');
    if (origin && origin !== requestOrigin(c.req.url) && !allowedOrigins.has(origin)) {
      throw new ApiError(
        'FORBIDDEN_ORIGIN',
        `Origin ${origin} may not call this API; add it to the allowed origins.`,
      );
    }
    await next();
  });
  app.use(
    '*',
    cors({
      origin: (origin) => (allowedOrigins.has(origin) ? origin : null),
      allowHeaders: ['Authorization', 'Content-Type', 'Last-Event-ID'],
      allowMethods: ['GET', 'POST', 'PUT', 'DELETE'],
      maxAge: 600,
    }),
  );

  app.use(
    '/api/*',
    bodyLimit({
      maxSize: options.bodyLimitBytes ?? 1024 * 1024,
      onError: () => {
        throw new ApiError(
          'PAYLOAD_TOO_LARGE',
          `Request body larger than ${options.bodyLimitBytes ?? 1024 * 1024} bytes.`,
        );
      },
    }),
  );

  app.use('/api/*', async (c, next) => {
    if (c.req.path === '/api/health') return next();
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const presented = match?.[1];
    if (!presented || !tokensMatch(presented, currentToken())) {
      throw new ApiError(
        'UNAUTHORIZED',
        match
          ? 'Wrong API token; use the one in the data directory (api-token), or rotate it with "keyward token rotate".'
          : 'Missing "Authorization: Bearer <token>"; the token is in the data directory (api-token).',
      );
    }
    // Limits count per token: one client's burst never throttles another's.
    clients.set(c.req.raw, clientIdentity(presented));
    await next();
  });

  app.use('/api/*', rateLimited('requests'));
  app.use('/api/instances', rateLimited('deploy', ['POST']));
  // Every PUT under an instance is a sidecar change (the generic route and its aliases).
  app.use('/api/instances/:id/*', rateLimited('rotation', ['PUT']));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer' });
  app.get('/api/openapi.json', (c) =>
    c.json(
      withInstalledSidecars(
        app.getOpenAPI31Document({
          openapi: '3.1.0',
          info: {
            title: 'keyward API',
            version: VERSION,
            description:
              'Deploy AI agents next to sidecars (a credential-injecting proxy first) so the agent can use a credential but never read it. Errors are `{ error: { code, message } }`.',
          },
          security: [{ bearerAuth: [] }],
        }),
        operations.registry,
      ),
    ),
  );

  const routes = app
    .route('/api', createSystemRoutes(operations))
    .route('/api', createInstanceRoutes(operations))
    .route('/api', createSidecarRoutes(operations, { logger }));
  app.route('/', createWebRoutes(options.webDirectory));
  return Object.assign(routes, { operations });
}

export type KeywardApp = ReturnType<typeof createApp>;
