import { hash, hkdfSync } from 'node:crypto';
import { RE2JS } from 're2js';
import { decodeBase64Go } from './encoding.js';
import { BadRequestError, ProxyAuthError, SecretJsonError, TokenizerError } from './errors.js';
import { LruCache } from './lru-cache.js';
import { OpenKey, openBytes } from './sealed-box.js';
import { parseSecret, type Secret } from './secret-json.js';

/** An opened, parsed and pre-compiled secret, shared by every request that presents it. */
export interface ResolvedSecret {
  /** Short hash of the sealed token: safe to log, identifies the credential. */
  fingerprint: string;
  secret: Secret;
  bearerDigest: Uint8Array | undefined;
  hostPattern: RE2JS | undefined;
  allowedHosts: ReadonlySet<string> | undefined;
  /** Per-secret memo for processors (parsed private keys). */
  memo: Map<string, unknown>;
}

/** Either the opened secret or why it could not be opened (both carry a fingerprint). */
export type Resolution =
  | { resolved: ResolvedSecret; error?: undefined; fingerprint: string }
  | { error: TokenizerError; fingerprint: string; resolved?: undefined };
type CacheEntry = Resolution;

/** Short, log-safe identifier of a sealed token: the first 8 bytes of its SHA-256, hex. */
export function tokenFingerprint(token: string): string {
  return tokenDigest(token).slice(0, 16);
}

/**
 * The key pair for tokens the proxy mints itself (token exchanges) when it only accepts listed
 * tokens: derived from the open key, so every worker and restart agrees, and never published,
 * so a client holding the public seal key cannot make a token that passes as minted.
 */
export function mintedTokenKey(openKey: OpenKey): OpenKey {
  const derived = hkdfSync(
    'sha256',
    openKey.bytes,
    new Uint8Array(0),
    'keyward-tokenizer minted tokens v1',
    32,
  );
  return OpenKey.fromHex(Buffer.from(derived).toString('hex'));
}

/** One allow-list entry: which token, and what the operator calls its credential. */
export interface AllowedTokenEntry {
  /** Hex SHA-256 of the sealed token's text, lowercase. */
  digest: string;
  /** Shown in telemetry next to the fingerprint. Not a secret: a label such as `github`. */
  name?: string;
}

const MAXIMUM_CREDENTIAL_NAME_LENGTH = 256;
const ALLOWED_TOKEN_ENTRY = /^(?:sha256:)?([0-9a-f]{64})(?:\s+(.*))?$/i;

/**
 * Parses an allow-list entry: 64 hex characters of SHA-256, optionally prefixed `sha256:`,
 * optionally followed by whitespace and the credential's name (one line, at most 256 characters).
 */
export function parseAllowedTokenEntry(entry: string): AllowedTokenEntry | undefined {
  const match = ALLOWED_TOKEN_ENTRY.exec(entry.trim());
  if (match === null) return undefined;
  const digest = (match[1] as string).toLowerCase();
  const name = match[2]?.trim();
  if (name === undefined || name === '') return { digest };
  if (name.length > MAXIMUM_CREDENTIAL_NAME_LENGTH || /\p{Cc}/u.test(name)) return undefined;
  return { digest, name };
}

/** The fingerprint the audit log and spans show for a token with this digest (tokenFingerprint). */
export function fingerprintOfDigest(digest: string): string {
  return digest.slice(0, 16);
}

/** What an allow-list holds for a sealed token: the hex SHA-256 of its base64 text. */
export function tokenDigest(token: string): string {
  return hash('sha256', token, 'hex');
}

export interface SecretResolverOptions {
  /**
   * Only these tokens (hex SHA-256 of the sealed text) are opened, plus tokens sealed with
   * `mintKey`. Anything else is refused with 407, however validly it is sealed.
   */
  allowedTokens?: ReadonlySet<string> | undefined;
  mintKey?: OpenKey | undefined;
}

/**
 * Opens sealed tokens at most once each: X25519 + JSON cost only on a cache miss. Keys are
 * SHA-256 digests of the token, so the cache never holds the token text itself. Failures
 * are cached too, so garbage tokens cannot force repeated key agreement work.
 */
export class SecretResolver {
  private readonly cache: LruCache<string, CacheEntry>;
  private readonly openKey: OpenKey;
  private readonly allowedTokens: ReadonlySet<string> | undefined;
  private readonly mintKey: OpenKey | undefined;
  hits = 0;
  misses = 0;

  constructor(openKey: OpenKey, maxEntries: number, options: SecretResolverOptions = {}) {
    this.openKey = openKey;
    this.cache = new LruCache(maxEntries);
    this.allowedTokens = options.allowedTokens;
    this.mintKey = options.mintKey;
  }

  get size(): number {
    return this.cache.size;
  }

  /** The opened secret, or its (cached) 502 error. */
  resolve(token: string): Resolution {
    return this.resolveWithDigest(token, tokenDigest(token));
  }

  /** resolve() for a caller that already has the token's digest (`tokenDigest(token)`). */
  resolveWithDigest(token: string, key: string): Resolution {
    let entry = this.cache.get(key);
    if (entry) this.hits++;
    else {
      this.misses++;
      entry = this.load(token, key);
      this.cache.set(key, entry);
    }
    return entry;
  }

  private load(token: string, digest: string): CacheEntry {
    const fingerprint = digest.slice(0, 16);
    try {
      const sealed = decodeBase64Go(token);
      let plaintext: Uint8Array;
      if (this.allowedTokens === undefined || this.allowedTokens.has(digest)) {
        plaintext = openBytes(sealed, this.openKey);
      } else {
        // Not listed: only a token this proxy minted (sealed to its unpublished key) may pass.
        try {
          if (!this.mintKey) throw new Error('no mint key');
          plaintext = openBytes(sealed, this.mintKey);
        } catch {
          throw new ProxyAuthError('token not issued for this proxy', 'TOKEN_NOT_ALLOWED');
        }
      }
      const secret = parseSecret(plaintext);
      let hostPattern: RE2JS | undefined;
      if (secret.allowedHostPattern !== undefined) {
        try {
          hostPattern = RE2JS.compile(secret.allowedHostPattern);
        } catch (error) {
          throw new SecretJsonError((error as Error).message);
        }
      }
      const bearerDigest =
        secret.auth.type === 'bearer' ? new Uint8Array(Buffer.from(secret.auth.digest, 'base64')) : undefined;
      return {
        fingerprint,
        resolved: {
          fingerprint,
          secret,
          bearerDigest,
          hostPattern,
          allowedHosts: secret.allowedHosts ? new Set(secret.allowedHosts) : undefined,
          memo: new Map(),
        },
      };
    } catch (error) {
      if (error instanceof TokenizerError) return { error, fingerprint };
      throw error;
    }
  }
}

/** allowed_hosts and allowed_host_pattern, ANDed, against the authority actually dialled. */
export function validateHost(resolved: ResolvedSecret, host: string): void {
  if (host === '') throw hostError('no host in request');
  if (resolved.allowedHosts && !resolved.allowedHosts.has(host))
    throw hostError(`secret not valid for ${host}`);
  if (resolved.hostPattern && !resolved.hostPattern.test(host))
    throw hostError(`secret not valid for ${host}`);
}

function hostError(detail: string): BadRequestError {
  return new BadRequestError('HOST_NOT_ALLOWED', `request validator failed: bad request: ${detail}`);
}
