/**
 * Every error this package throws is a TokenizerError with a stable UPPER_SNAKE `code`.
 * `status` is the HTTP status the proxy answers with (the reference's 400 / 407 / 502 split,
 * protocol §3.9). Messages never contain secret material: they are sent to clients and logged.
 */
export type TokenizerErrorCode =
  | 'INVALID_OPEN_KEY'
  | 'INVALID_SEAL_KEY'
  | 'BAD_ENCODING'
  | 'DECRYPTION_FAILED'
  | 'BAD_SECRET_JSON'
  | 'BAD_SECRET_DEFINITION'
  | 'BAD_TOKENIZER_HEADER'
  | 'BAD_PARAMS'
  | 'BAD_PROXY_AUTH'
  | 'UNSUPPORTED_AUTH'
  | 'HOST_NOT_ALLOWED'
  | 'PROCESSOR_CONFIG'
  | 'PROCESSOR_RUNTIME'
  | 'RESPONSE_PROCESSOR'
  | 'NO_SECRETS'
  | 'BAD_TARGET'
  | 'UPSTREAM_DENIED'
  | 'UPSTREAM_FAILED'
  | 'REQUEST_TOO_LARGE'
  | 'MALFORMED_REQUEST'
  | 'REQUEST_HEAD_TOO_LARGE'
  | 'UNSUPPORTED_HTTP'
  | 'BAD_UPSTREAM_RESPONSE'
  | 'UPSTREAM_TIMEOUT'
  | 'TOKEN_NOT_ALLOWED'
  | 'INVALID_CONFIG';

export class TokenizerError extends Error {
  readonly code: TokenizerErrorCode;
  /** HTTP status the proxy answers with when this error stops a request. */
  readonly status: number;

  constructor(code: TokenizerErrorCode, message: string, status = 502, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenizerError';
    this.code = code;
    this.status = status;
  }
}

/** A hex key that is not 32 bytes of hex. */
export class InvalidKeyError extends TokenizerError {
  constructor(code: 'INVALID_OPEN_KEY' | 'INVALID_SEAL_KEY', message: string) {
    super(code, message, 502);
    this.name = 'InvalidKeyError';
  }
}

/** Bad base64 in a token (Go's `illegal base64 data at input byte N`). */
export class EncodingError extends TokenizerError {
  readonly offset: number;
  constructor(offset: number, prefix = 'bad Proxy-Tokenizer encoding') {
    super('BAD_ENCODING', `${prefix}: illegal base64 data at input byte ${offset}`, 502);
    this.name = 'EncodingError';
    this.offset = offset;
  }
}

/** The sealed box could not be opened: wrong key, truncated or tampered token. */
export class DecryptionError extends TokenizerError {
  constructor() {
    super('DECRYPTION_FAILED', 'failed Proxy-Tokenizer decryption', 502);
    this.name = 'DecryptionError';
  }
}

/** The opened plaintext is not a valid Secret (Go: `bad secret json: …`). */
export class SecretJsonError extends TokenizerError {
  constructor(detail: string) {
    super('BAD_SECRET_JSON', `bad secret json: ${detail}`, 502);
    this.name = 'SecretJsonError';
  }
}

/** Proxy-Authorization did not satisfy a secret's auth (407). */
export class ProxyAuthError extends TokenizerError {
  constructor(
    detail = 'bad or missing proxy auth',
    code: 'BAD_PROXY_AUTH' | 'UNSUPPORTED_AUTH' | 'TOKEN_NOT_ALLOWED' = 'BAD_PROXY_AUTH',
  ) {
    super(code, `unauthorized to use secret: not authorized: ${detail}`, 407);
    this.name = 'ProxyAuthError';
  }
}

/** Anything the client got wrong that the reference answers with 400. */
export class BadRequestError extends TokenizerError {
  constructor(code: TokenizerErrorCode, message: string) {
    super(code, message, 400);
    this.name = 'BadRequestError';
  }
}

/** Invalid configuration at start-up (env vars, options). */
export class ConfigError extends TokenizerError {
  constructor(message: string) {
    super('INVALID_CONFIG', message, 500);
    this.name = 'ConfigError';
  }
}
