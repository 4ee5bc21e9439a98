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
  'PROVIDER_CONTRACT_VIOLATION',
  'MISSING_DEPENDENCY',
  'DEPENDENCY_CYCLE',
  'PORT_CONFLICT',
  'CONTAINER_NAME_CONFLICT',
  'SECRET_NAME_CONFLICT',
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
  'VERIFY_FAILED',
  'UNAUTHORIZED',
  'RATE_LIMITED',
  'INTERNAL_ERROR',
] as const;

export type CoreErrorCode = (typeof errorCodes)[number];

/**
 * A core code, or one a provider registered (`OPEN_KEY_MISSING` is the tokenizer's): upper
 * snake case, registered with `registerErrorCodes` so the API knows its HTTP status.
 */
export type KeywardErrorCode = CoreErrorCode | Uppercase<string>;

export interface RegisteredErrorCode {
  code: string;
  httpStatus: number;
  description: string;
  /** The provider (or package) that owns it. */
  owner: string;
}

const registeredErrorCodes = new Map<string, RegisteredErrorCode>();

/**
 * Registers codes a provider throws. A code owned by someone else, or one of core's, is refused:
 * a code never changes meaning.
 */
export function registerErrorCodes(
  owner: string,
  codes: Readonly<Record<string, { httpStatus: number; description: string }>>,
): void {
  for (const [code, { httpStatus, description }] of Object.entries(codes)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(code)) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: owner,
        message: `Error code "${code}" of "${owner}" must be UPPER_SNAKE_CASE.`,
      });
    }
    const existing = registeredErrorCodes.get(code);
    if ((errorCodes as readonly string[]).includes(code) || (existing && existing.owner !== owner)) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: owner,
        message: `Error code "${code}" of "${owner}" is already ${existing ? `registered by "${existing.owner}"` : "one of keyward's own"}; choose another name.`,
      });
    }
    registeredErrorCodes.set(code, { code, httpStatus, description, owner });
  }
}

/** A code registered by a provider, or undefined for core codes and unknown ones. */
export function registeredErrorCode(code: string): RegisteredErrorCode | undefined {
  return registeredErrorCodes.get(code);
}

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
