import { BadRequestError, TokenizerError } from './errors.js';

const TOKEN_CHARACTER = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Go textproto.CanonicalMIMEHeaderKey: `x-auth-token` → `X-Auth-Token`; invalid names unchanged. */
export function canonicalHeaderKey(name: string): string {
  if (!TOKEN_CHARACTER.test(name)) return name;
  let upper = true;
  let result = '';
  for (const character of name) {
    result += upper ? character.toUpperCase() : character.toLowerCase();
    upper = character === '-';
  }
  return result;
}

export type Params = Readonly<Record<string, string>>;

/** Hop-by-hop headers and the proxy's own: never injected into, never forwarded as they came. */
export const PROXY_CONTROLLED_HEADERS: readonly string[] = [
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-tokenizer',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
];

/** Header names (lower case) a credential can never be written into: `selectDst` refuses them. */
export const RESERVED_DST_HEADERS: readonly string[] = [...PROXY_CONTROLLED_HEADERS, 'content-length'];
const RESERVED_DST = new Set(RESERVED_DST_HEADERS);

export interface FmtDstConfig {
  fmt?: string | undefined;
  allowedFmt?: string[] | undefined;
  dst?: string | undefined;
  allowedDst?: string[] | undefined;
}

/** §2.4 format selection; `binary` secrets (HMAC) format with %x / %X, strings with %s. */
export function selectFmt(config: FmtDstConfig, params: Params, binary: boolean): string {
  if (Object.hasOwn(params, 'fmt')) return params.fmt as string;
  if (config.fmt) return config.fmt;
  if (config.allowedFmt && config.allowedFmt.length > 0) return config.allowedFmt[0] as string;
  return binary ? 'Bearer %x' : 'Bearer %s';
}

/** §2.4 format checks; returns the verb character or undefined when the format is refused. */
export function checkFmt(config: FmtDstConfig, format: string, binary: boolean): 's' | 'x' | 'X' | undefined {
  if (config.fmt && format !== config.fmt) return undefined;
  if (config.allowedFmt !== undefined && !config.allowedFmt.includes(format)) return undefined;
  const index = format.indexOf('%');
  if (index < 0 || index === format.length - 1) return undefined;
  const verb = format[index + 1];
  if (binary ? verb !== 'x' && verb !== 'X' : verb !== 's') return undefined;
  if (format.indexOf('%', index + 2) >= 0) return undefined;
  return verb as 's' | 'x' | 'X';
}

/** Applies a checked format: the single verb replaced by the value. */
export function applyFmt(format: string, value: string): string {
  const index = format.indexOf('%');
  return format.slice(0, index) + value + format.slice(index + 2);
}

/** §2.4 destination selection and checks (case-insensitive via canonical form). 400 when refused. */
export function selectDst(config: FmtDstConfig, params: Params): string {
  let dst: string;
  if (Object.hasOwn(params, 'dst')) dst = params.dst as string;
  else if (config.dst) dst = config.dst;
  else if (config.allowedDst && config.allowedDst.length > 0) dst = config.allowedDst[0] as string;
  else dst = 'Authorization';
  const canonical = canonicalHeaderKey(dst);
  if (config.dst && canonicalHeaderKey(config.dst) !== canonical) throw runtimeError('dst not allowed');
  if (
    config.allowedDst !== undefined &&
    !config.allowedDst.some((entry) => canonicalHeaderKey(entry) === canonical)
  ) {
    throw runtimeError('dst not allowed');
  }
  if (!TOKEN_CHARACTER.test(canonical)) throw runtimeError('invalid dst header name');
  // Host would let a credential redirect virtual-host routing (the reference's Go transport
  // ignores it); framing and hop-by-hop headers would corrupt the upstream request.
  if (RESERVED_DST.has(canonical.toLowerCase())) throw runtimeError(`dst ${canonical} is reserved`);
  return canonical;
}

/** A processor failure while modifying the request: the client sees only `bad request`. */
export class ProcessorRuntimeError extends BadRequestError {
  readonly detail: string;
  constructor(detail: string) {
    super('PROCESSOR_RUNTIME', 'bad request');
    this.name = 'ProcessorRuntimeError';
    this.detail = detail;
  }
}

export function runtimeError(detail: string): ProcessorRuntimeError {
  return new ProcessorRuntimeError(detail);
}

/** Construction failures: 502 with the reference's error text. */
export function configError(message: string): TokenizerError {
  return new TokenizerError('PROCESSOR_CONFIG', message, 502);
}

/** Header values must not smuggle CR/LF or control characters (Go refuses them: 502). */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
export function checkHeaderValue(value: string): string {
  if (INVALID_VALUE.test(value)) {
    throw new TokenizerError('PROCESSOR_RUNTIME', 'invalid header value produced by processor', 502);
  }
  return value;
}
