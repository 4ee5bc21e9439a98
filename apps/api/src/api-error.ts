import {
  isKeywardError,
  type KeywardErrorCode,
  redact,
  registeredErrorCode,
  type SecretRedactor,
  secretRedactor,
} from '@keyward/core';
import { HTTPException } from 'hono/http-exception';

/** Codes only the HTTP layer produces; everything else is a core or provider-registered code. */
export const apiOnlyErrorCodes = [
  'NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'FORBIDDEN_ORIGIN',
  // The server's own data directory (jobs, token): see data-directory-errors.ts.
  'DATA_DIRECTORY_FULL',
  'DATA_DIRECTORY_UNWRITABLE',
] as const;
export type ApiErrorCode = KeywardErrorCode | (typeof apiOnlyErrorCodes)[number];

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 501 | 502 | 503;

const statusByCode: Partial<Record<ApiErrorCode, ErrorStatus>> = {
  INVALID_INSTANCE_SPEC: 400,
  INVALID_PROVIDER_CONFIG: 400,
  INVALID_INPUT: 400,
  UNKNOWN_PROVIDER: 400,
  UNSUPPORTED_SPEC_VERSION: 400,
  PORT_CONFLICT: 400,
  CONTAINER_NAME_CONFLICT: 400,
  ENV_CONFLICT: 400,
  FILE_CONFLICT: 400,
  UNKNOWN_CONTAINER: 400,
  // Sidecars the spec combines that cannot go together: the spec has to change.
  SECRET_NAME_CONFLICT: 400,
  MISSING_DEPENDENCY: 400,
  DEPENDENCY_CYCLE: 400,
  // A provider that breaks the secret rules is a defect of the provider, not of the request.
  UNKNOWN_SECRET_CONSUMER: 500,
  SECRET_NOT_AGENT_SAFE: 500,
  SECRET_IN_PLAIN_FIELD: 500,
  PLUGIN_LOAD_FAILED: 500,
  // A provider broke the contract: a bug to report, answered with the message that names it.
  PROVIDER_CONTRACT_VIOLATION: 500,
  INTERNAL_ERROR: 500,
  UNAUTHORIZED: 401,
  FORBIDDEN_ORIGIN: 403,
  NOT_FOUND: 404,
  INSTANCE_NOT_FOUND: 404,
  INSTANCE_EXISTS: 409,
  ROTATION_IN_PROGRESS: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  UNSUPPORTED_CAPABILITY: 501,
  ROTATION_NOT_SUPPORTED: 501,
  RUNTIME_ERROR: 502,
  DEPLOY_FAILED: 502,
  ROTATION_FAILED: 502,
  VERIFY_FAILED: 502,
  RUNTIME_UNAVAILABLE: 503,
  // The server cannot record the job it would start: nothing was started, retry once fixed.
  DATA_DIRECTORY_FULL: 503,
  DATA_DIRECTORY_UNWRITABLE: 503,
};

const knownStatuses = new Set<number>([400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 501, 502, 503]);

/** Core and HTTP codes from the table; a provider's own codes from what it registered; else 500. */
export function statusForCode(code: string): ErrorStatus {
  const known = statusByCode[code as ApiErrorCode];
  if (known !== undefined) return known;
  const registered = registeredErrorCode(code)?.httpStatus;
  if (registered !== undefined && knownStatuses.has(registered)) return registered as ErrorStatus;
  // A registered status outside the documented set still says which class it is.
  if (registered !== undefined && registered >= 400 && registered < 500) return 400;
  if (registered !== undefined && registered >= 502 && registered < 600) return 502;
  return 500;
}

export interface ErrorBody {
  error: { code: string; message: string; providerId?: string; details?: Record<string, unknown> };
}

/** An error raised by the HTTP layer itself (auth, origin, limits, unknown routes). */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly headers: Record<string, string>;
  constructor(code: ApiErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.headers = headers;
  }
}

/**
 * Turns any thrown value into the `{ error: { code, message } }` body and its
 * status. Unknown errors become INTERNAL_ERROR without their message, which may
 * carry anything; everything goes through `redact`.
 */
export function toErrorResponse(
  error: unknown,
  redactor: SecretRedactor = secretRedactor,
): { status: ErrorStatus; body: ErrorBody } {
  const clean = <T>(value: T): T =>
    redactor === secretRedactor ? redact(value) : redact(redact(value, redactor));
  if (error instanceof ApiError) {
    return {
      status: statusForCode(error.code),
      body: clean({ error: { code: error.code, message: error.message } }),
    };
  }
  // Hono's own 400s (malformed JSON, for one) carry a message meant for the client.
  if (error instanceof HTTPException && error.status === 400) {
    return {
      status: 400,
      body: clean({ error: { code: 'INVALID_INPUT', message: `${error.message}; send a JSON body.` } }),
    };
  }
  // A body of another type (or with no Content-Type) where the route takes JSON.
  if (error instanceof HTTPException && error.status === 415) {
    return {
      status: 415,
      body: {
        error: {
          code: 'UNSUPPORTED_MEDIA_TYPE',
          message: 'This route takes a JSON body: send it with "Content-Type: application/json".',
        },
      },
    };
  }
  if (isKeywardError(error)) {
    const json = error.toJSON();
    return { status: statusForCode(error.code), body: clean({ error: json }) };
  }
  return {
    status: 500,
    body: { error: { code: 'INTERNAL_ERROR', message: 'Internal error; see the server log for details.' } },
  };
}
