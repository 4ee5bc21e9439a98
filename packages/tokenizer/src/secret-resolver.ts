import { hash } from 'node:crypto';
import { RE2JS } from 're2js';
import { decodeBase64Go } from './encoding.js';
import { BadRequestError, SecretJsonError, TokenizerError } from './errors.js';
import { LruCache } from './lru-cache.js';
import { type OpenKey, openBytes } from './sealed-box.js';
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
  return hash('sha256', token, 'hex').slice(0, 16);
}

/**
 * Opens sealed tokens at most once each: X25519 + JSON cost only on a cache miss. Keys are
 * SHA-256 digests of the token, so the cache never holds the token text itself. Failures
 * are cached too, so garbage tokens cannot force repeated key agreement work.
 */
export class SecretResolver {
  private readonly cache: LruCache<string, CacheEntry>;
  private readonly openKey: OpenKey;
  hits = 0;
  misses = 0;

  constructor(openKey: OpenKey, maxEntries: number) {
    this.openKey = openKey;
    this.cache = new LruCache(maxEntries);
  }

  get size(): number {
    return this.cache.size;
  }

  /** The opened secret, or its (cached) 502 error. */
  resolve(token: string): Resolution {
    const key = hash('sha256', token, 'hex');
    let entry = this.cache.get(key);
    if (entry) this.hits++;
    else {
      this.misses++;
      entry = this.load(token, key.slice(0, 16));
      this.cache.set(key, entry);
    }
    return entry;
  }

  private load(token: string, fingerprint: string): CacheEntry {
    try {
      const secret = parseSecret(openBytes(decodeBase64Go(token), this.openKey));
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
