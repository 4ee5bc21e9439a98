const marker = Symbol.for('keyward.error');

/**
 * Stable, machine-readable error codes. The API maps them to HTTP statuses and
 * clients switch on them, so a code never changes meaning once published.
 */
export const errorCodes = [
  'INVALID_INSTANCE_SPEC',
  'INVALID_PROVIDER_CONFIG',
  'INVALID_INPUT',
  'UNKNOWN_PROVIDER',
  'UNSUPPORTED_SPEC_VERSION',
  'UNSUPPORTED_CAPABILITY',
  'PLUGIN_LOAD_FAILED',
  'PORT_CONFLICT',
  'CONTAINER_NAME_CONFLICT',
  'UNKNOWN_SECRET_CONSUMER',
  'SECRET_NOT_AGENT_SAFE',
  'ENV_CONFLICT',
  'FILE_CONFLICT',
  'UNKNOWN_CONTAINER',
  'SECRET_IN_PLAIN_FIELD',
  'INSTANCE_NOT_FOUND',
  'INSTANCE_EXISTS',
  'RUNTIME_UNAVAILABLE',
  'RUNTIME_ERROR',
  'DEPLOY_FAILED',
  'ROTATION_FAILED',
  'ROTATION_IN_PROGRESS',
  'ROTATION_NOT_SUPPORTED',
  'OPEN_KEY_MISSING',
  'VERIFY_FAILED',
  'IMAGE_BUILD_FAILED',
  'UNAUTHORIZED',
  'RATE_LIMITED',
  'INTERNAL_ERROR',
] as const;

export type KeywardErrorCode = (typeof errorCodes)[number];

export interface KeywardErrorOptions {
  code: KeywardErrorCode;
  message: string;
  cause?: unknown;
  /** Provider that raised or caused the error, so messages and logs can name it. */
  providerId?: string;
  /** Structured details safe to show to a client (never secret values). */
  details?: Record<string, unknown>;
  isRetryable?: boolean;
}

/**
 * The one error base class of keyward. `isInstance` works across duplicated
 * copies of this package (two versions in one node_modules), where
 * `instanceof` would not.
 */
export class KeywardError extends Error {
  readonly [marker] = true;
  readonly code: KeywardErrorCode;
  readonly providerId: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly isRetryable: boolean;

  constructor(options: KeywardErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeywardError';
    this.code = options.code;
    this.providerId = options.providerId;
    this.details = options.details;
    this.isRetryable = options.isRetryable ?? false;
  }

  static isInstance(error: unknown): error is KeywardError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[marker] === true;
  }

  toJSON(): {
    code: KeywardErrorCode;
    message: string;
    providerId?: string;
    details?: Record<string, unknown>;
  } {
    return {
      code: this.code,
      message: this.message,
      ...(this.providerId === undefined ? {} : { providerId: this.providerId }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

export function isKeywardError(error: unknown, code?: KeywardErrorCode): error is KeywardError {
  return KeywardError.isInstance(error) && (code === undefined || error.code === code);
}
