import { hash, timingSafeEqual } from 'node:crypto';
import { ProxyAuthError } from './errors.js';
import { type MacaroonAccess, verifyMacaroonToken } from './macaroon-auth.js';
import type { AuthDefinition } from './secret-json.js';

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Go url.QueryUnescape: `%XX` decoded, `+` → space; undefined when an escape is malformed. */
export function queryUnescape(text: string): string | undefined {
  if (/%(?![0-9A-Fa-f]{2})/.test(text)) return undefined;
  const bytes = Buffer.from(text.replaceAll('+', ' ').replace(/%([0-9A-Fa-f]{2})/g, '\u0000$1'), 'latin1');
  // Rebuild raw bytes so that multi-byte UTF-8 escapes decode exactly.
  const output: number[] = [];
  for (let index = 0; index < bytes.length; index++) {
    if (bytes[index] === 0) {
      output.push(Number.parseInt(bytes.subarray(index + 1, index + 3).toString('latin1'), 16));
      index += 2;
    } else output.push(bytes[index] as number);
  }
  return Buffer.from(output).toString('utf8');
}

/**
 * Candidate proxy tokens from every Proxy-Authorization line (protocol §3.4):
 * `Bearer x` and `FlyV1 x` give x verbatim; `Basic` gives the password raw and URL-unescaped.
 * The scheme is case-sensitive. Digests are computed once per request, on demand.
 */
export class ProxyCredentials {
  /** The Proxy-Authorization lines these credentials come from. */
  readonly lines: readonly string[];
  readonly tokens: string[];
  private digests: Buffer[] | undefined;
  /** A digest these credentials matched already (the same secret, on a kept-alive connection). */
  private matched: Uint8Array | undefined = undefined;

  /**
   * `previous` when it was built from exactly these lines (the previous request of a kept-alive
   * connection: clients send the same line every time), so its digests are not computed again.
   */
  static reuse(lines: readonly string[], previous: ProxyCredentials | undefined): ProxyCredentials {
    if (previous !== undefined && sameLines(previous.lines, lines)) return previous;
    // Kept beyond this request: copies, so that they do not hold the whole request head.
    return new ProxyCredentials(lines.map(detachedCopy));
  }

  constructor(lines: readonly string[]) {
    this.lines = lines;
    const tokens: string[] = [];
    for (const line of lines) {
      const space = line.indexOf(' ');
      if (space < 0) continue;
      const scheme = line.slice(0, space);
      const rest = line.slice(space + 1);
      if (scheme === 'Bearer' || scheme === 'FlyV1') tokens.push(rest);
      else if (scheme === 'Basic') {
        if (!STRICT_BASE64.test(rest)) continue;
        const decoded = Buffer.from(rest, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) continue;
        const password = decoded.slice(colon + 1);
        tokens.push(password);
        const unescaped = queryUnescape(password);
        if (unescaped !== undefined && unescaped !== password) tokens.push(unescaped);
      }
    }
    this.tokens = tokens;
  }

  /** Constant-time comparison of SHA-256(candidate) with the sealed digest. */
  matchesDigest(digest: Uint8Array): boolean {
    // The same digest object (the cached secret's) that matched before: the client knows it did.
    if (digest === this.matched) return true;
    if (digest.length !== 32) return false;
    // One-shot hash(): no Hash object per candidate (this runs on every request).
    this.digests ??= this.tokens.map((token) => hash('sha256', token, 'buffer') as unknown as Buffer);
    let matched = false;
    for (const candidate of this.digests) {
      // No early exit: every candidate is compared.
      if (timingSafeEqual(candidate, digest)) matched = true;
    }
    if (matched) this.matched = digest;
    return matched;
  }
}

/**
 * A copy of `text` that shares no memory with it: a slice of a request head would keep the whole
 * head (up to 64 KiB) alive for as long as a connection remembers it. Header text is latin1.
 */
export function detachedCopy(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1');
}

function sameLines(first: readonly string[], second: readonly string[]): boolean {
  if (first.length !== second.length) return false;
  for (let index = 0; index < first.length; index++) if (first[index] !== second[index]) return false;
  return true;
}

/** Checks one secret's auth; throws ProxyAuthError (407). */
export function authorize(
  auth: AuthDefinition,
  digest: Uint8Array | undefined,
  credentials: ProxyCredentials,
  access: MacaroonAccess,
): void {
  switch (auth.type) {
    case 'none':
      return;
    case 'bearer':
      if (digest && credentials.matchesDigest(digest)) return;
      throw new ProxyAuthError();
    case 'macaroon': {
      const key = typeof auth.key === 'string' ? new TextEncoder().encode(auth.key) : auth.key;
      if (credentials.tokens.some((token) => verifyMacaroonToken(token, key, access))) return;
      throw new ProxyAuthError();
    }
    case 'flyio_macaroon':
      throw new ProxyAuthError('flyio_macaroon_auth only works inside Fly.io', 'UNSUPPORTED_AUTH');
    case 'fly_src':
      throw new ProxyAuthError(
        'no flysrc parser (fly_src_auth only works inside Fly.io)',
        'UNSUPPORTED_AUTH',
      );
  }
}
