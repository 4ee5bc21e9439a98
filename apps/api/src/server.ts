import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { KeywardError } from '@keyward/core';
import { type CreateAppOptions, createApp, type KeywardApp } from './app.js';
import { createDefaultRegistry } from './default-registry.js';
import { JobManager } from './jobs/job-manager.js';
import { jobStorePath, SqliteJobStore } from './jobs/job-store.js';
import { createJsonLogger } from './logger.js';
import {
  apiTokenPath,
  createTokenFileSource,
  ensureApiToken,
  resolveDataDirectory,
} from './security/api-token.js';
import type { RateLimit } from './security/rate-limiter.js';
import { defaultWebDirectory } from './web-routes.js';

export const defaultPort = 7878;
export const defaultHost = '127.0.0.1';

export interface StartServerOptions extends Partial<Omit<CreateAppOptions, 'token'>> {
  /** Default `KEYWARD_HOST` or 127.0.0.1. Anything else exposes the API beyond this machine. */
  host?: string;
  /** Default `KEYWARD_PORT` or 7878; 0 picks a free port. */
  port?: number;
  /** Where the first-start token notice goes. Default: stderr. */
  print?: (line: string) => void;
  /** Keep jobs in `<data dir>/keyward.sqlite` (default true; ignored when `jobs` is given). */
  persistJobs?: boolean;
  /** Finished jobs kept in the store. Default 200. */
  maximumJobs?: number;
}

export interface RunningServer {
  app: KeywardApp;
  url: string;
  host: string;
  port: number;
  dataDirectory: string;
  close(): Promise<void>;
}

const loopbackHosts = new Set(['127.0.0.1', '::1', 'localhost']);

const rateLimitVariables = {
  requests: 'KEYWARD_REQUESTS_PER_MINUTE',
  deploy: 'KEYWARD_DEPLOYS_PER_MINUTE',
  rotation: 'KEYWARD_ROTATIONS_PER_MINUTE',
} as const;

/**
 * Per-token limits from `KEYWARD_REQUESTS_PER_MINUTE`, `KEYWARD_DEPLOYS_PER_MINUTE` and
 * `KEYWARD_ROTATIONS_PER_MINUTE` (a load test or a busy UI may need more than the defaults).
 */
export function rateLimitsFromEnvironment(
  environment: NodeJS.ProcessEnv = process.env,
): Partial<Record<keyof typeof rateLimitVariables, RateLimit>> {
  const limits: Partial<Record<keyof typeof rateLimitVariables, RateLimit>> = {};
  for (const [group, variable] of Object.entries(rateLimitVariables) as [
    keyof typeof rateLimitVariables,
    string,
  ][]) {
    const value = environment[variable];
    if (value === undefined || value === '') continue;
    if (!/^[1-9][0-9]{0,8}$/.test(value)) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        message: `${variable} must be a whole number of requests per minute, at least 1 (got "${value}"); unset it for the default.`,
      });
    }
    limits[group] = { limit: Number(value), windowMilliseconds: 60_000 };
  }
  return limits;
}

/**
 * Binds the API: ensures the token (generated at first start, printed once),
 * builds the default registry (built-ins plus plugins) unless one is given.
 */
export async function startServer(options: StartServerOptions = {}): Promise<RunningServer> {
  const print = options.print ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dataDirectory = options.dataDirectory ?? resolveDataDirectory();
  const host = options.host ?? process.env['KEYWARD_HOST'] ?? defaultHost;
  const port = options.port ?? Number(process.env['KEYWARD_PORT'] ?? defaultPort);
  const logger = options.logger ?? createJsonLogger();
  const rateLimits = options.rateLimits ?? rateLimitsFromEnvironment();

  const { token, created } = ensureApiToken(dataDirectory);
  if (created) {
    // Printed once, on the run that created it; later runs point at the file.
    print(
      `keyward: generated an API token (stored mode 0600 in ${apiTokenPath(dataDirectory)}):\n  ${token}`,
    );
  }
  if (!loopbackHosts.has(host)) {
    logger.log(
      'warn',
      `listening on ${host}: the API is reachable beyond this machine; keep the token secret`,
    );
  }
  const registry = options.registry ?? (await createDefaultRegistry({ dataDirectory }));
  for (const loadError of registry.loadErrors) {
    logger.log('warn', 'provider failed to load', { ...loadError });
  }
  // Jobs outlive the process: one connection, this process's only writer.
  const store =
    options.jobs || options.persistJobs === false
      ? undefined
      : new SqliteJobStore(jobStorePath(dataDirectory));
  const jobs =
    options.jobs ??
    new JobManager({
      ...(store ? { store } : {}),
      ...(options.maximumJobs ? { maximumJobs: options.maximumJobs } : {}),
      ...(options.redactor ? { redactor: options.redactor } : {}),
      // A running job goes on when its record cannot be written (a full disk); the log says so.
      onStoreError: (error, job) =>
        logger.log('warn', 'job record not written; the job goes on in memory', {
          job: job.id,
          instance: job.instance,
          error,
        }),
    });
  const app = createApp({
    ...options,
    rateLimits,
    registry,
    logger,
    jobs,
    dataDirectory,
    token: createTokenFileSource(dataDirectory),
    webDirectory: options.webDirectory ?? defaultWebDirectory(),
  });
  // Jobs a stopped process left running are finished (or rolled back) before the first request;
  // what cannot be yet (the runtime does not answer) is retried in the background.
  await app.operations.reconcile();

  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const instance = serve({ fetch: app.fetch, hostname: host, port }, () => resolve(instance));
    instance.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${urlHost}:${address.port}`;
  logger.log('info', 'keyward API listening', { url, dataDirectory });
  return {
    app,
    url,
    host,
    port: address.port,
    dataDirectory,
    close: () =>
      new Promise<void>((resolve, reject) => {
        app.operations.stopReconciliation();
        const closable = server as unknown as { closeAllConnections?: () => void };
        closable.closeAllConnections?.();
        server.close((error) => {
          store?.close();
          if (error) reject(error);
          else resolve();
        });
      }),
  };
}
