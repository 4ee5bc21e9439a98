// A runtime that stops answering in the middle of an operation: the rollback cannot finish, and
// the caller needs to know, so it can finish it once the runtime answers again.
import { KeywardError, redact, withTimeout } from '@keyward/core';
import type Docker from 'dockerode';
import { runtimeStartHint } from './runtime-detection.js';

/** Whether the runtime answers a ping within a few seconds. */
export async function runtimeAnswers(docker: Docker, timeoutMs = 5000): Promise<boolean> {
  try {
    await withTimeout(docker.ping(), timeoutMs, 'the runtime did not answer a ping');
    return true;
  } catch {
    return false;
  }
}

/**
 * `RUNTIME_UNAVAILABLE` with `details.rollback: 'incomplete'` (the contract of `apply` and
 * `rotateSecrets`): what the operation changed is not undone yet.
 */
export function rollbackIncompleteError(input: {
  providerId: string;
  /** `Applying instance "x"`, `Rotating secrets of "x"`. */
  operation: string;
  step: string;
  cause: unknown;
  /** What is left and what the caller does about it. */
  left: string;
}): KeywardError {
  const reason = input.cause instanceof Error ? input.cause.message : String(input.cause);
  return new KeywardError({
    code: 'RUNTIME_UNAVAILABLE',
    providerId: input.providerId,
    message: redact(
      `${input.operation} failed at step "${input.step}": the container runtime stopped answering (${reason}), ${input.left} ${runtimeStartHint}`,
    ),
    details: { step: input.step, rollback: 'incomplete' },
    isRetryable: true,
    cause: input.cause,
  });
}

// Errors of a connection to the runtime's API (no HTTP answer at all), as node reports them.
const connectionCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/** Whether the runtime's API did not answer at all (as opposed to answering with an error). */
export function isRuntimeConnectionError(error: unknown): boolean {
  const failure = error as {
    code?: unknown;
    syscall?: unknown;
    statusCode?: unknown;
    message?: unknown;
  } | null;
  // A KeywardError already says what happened (and may quote the connection error).
  if (!failure || failure.statusCode !== undefined || KeywardError.isInstance(error)) return false;
  if (typeof failure.code === 'string' && connectionCodes.has(failure.code)) return true;
  // A unix socket that is gone.
  if (failure.code === 'ENOENT' && failure.syscall === 'connect') return true;
  return typeof failure.message === 'string' && /socket hang up/.test(failure.message);
}

/** Where the client connects, for messages: `unix:///run/podman.sock`, `http://host:2375`. */
export function runtimeEndpoint(docker: Docker): string {
  const modem = docker.modem as { socketPath?: unknown; host?: unknown; port?: unknown; protocol?: unknown };
  if (typeof modem.socketPath === 'string') return `unix://${modem.socketPath}`;
  if (typeof modem.host === 'string')
    return `${String(modem.protocol ?? 'http')}://${modem.host}:${String(modem.port ?? '')}`;
  return 'the configured endpoint';
}

/** A connection failure as `RUNTIME_UNAVAILABLE` that says where and what to do; anything else unchanged. */
export function asRuntimeUnavailable(
  error: unknown,
  providerId: string,
  docker: Docker | undefined,
): unknown {
  if (!isRuntimeConnectionError(error)) return error;
  return new KeywardError({
    code: 'RUNTIME_UNAVAILABLE',
    providerId,
    message: `The container runtime at ${docker ? runtimeEndpoint(docker) : 'DOCKER_HOST'} does not answer (${(error as Error).message}). ${runtimeStartHint}`,
    isRetryable: true,
    cause: error,
  });
}
