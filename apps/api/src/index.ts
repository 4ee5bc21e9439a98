export { ApiError, type ApiErrorCode, type ErrorBody, statusForCode, toErrorResponse } from './api-error.js';
export { type CreateAppOptions, createApp, type KeywardApp } from './app.js';
export { createDefaultRegistry, type DefaultRegistryOptions } from './default-registry.js';
export { InstanceOperations, registerSecretsIn } from './instance-operations.js';
export {
  type JobEvent,
  type JobKind,
  JobManager,
  type JobManagerOptions,
  type JobReconciliation,
  type JobStatus,
  type JobSummary,
} from './jobs/job-manager.js';
export { type JobStore, jobStorePath, SqliteJobStore, type StoredJob } from './jobs/job-store.js';
export {
  createJsonLogger,
  type JsonLoggerOptions,
  type Logger,
  type LogLevel,
  silentLogger,
} from './logger.js';
export {
  apiTokenPath,
  ensureApiToken,
  readApiToken,
  resolveDataDirectory,
  rotateApiToken,
  tokensMatch,
} from './security/api-token.js';
export type { RateLimit } from './security/rate-limiter.js';
export {
  defaultHost,
  defaultPort,
  type RunningServer,
  type StartServerOptions,
  startServer,
} from './server.js';
export { VERSION } from './version.js';
