import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KeywardError, registerSecret } from '@keyward/core';

export const apiTokenFileName = 'api-token';

/** `KEYWARD_DATA_DIR`, else `~/.keyward`. */
export function resolveDataDirectory(environment: NodeJS.ProcessEnv = process.env): string {
  const configured = environment['KEYWARD_DATA_DIR'];
  return configured && configured.length > 0 ? configured : join(homedir(), '.keyward');
}

export function apiTokenPath(dataDirectory: string): string {
  return join(dataDirectory, apiTokenFileName);
}

function newToken(): string {
  return `kw_${randomBytes(32).toString('base64url')}`;
}

function writeToken(dataDirectory: string, token: string): void {
  mkdirSync(dataDirectory, { recursive: true, mode: 0o700 });
  const path = apiTokenPath(dataDirectory);
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  // `mode` applies only when the file is created; tighten an older, looser file too.
  chmodSync(path, 0o600);
}

/** Reads the token, or undefined when none was generated yet. */
export function readApiToken(dataDirectory: string): string | undefined {
  try {
    const token = readFileSync(apiTokenPath(dataDirectory), 'utf8').trim();
    if (token.length === 0) return undefined;
    registerSecret(token);
    return token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The token of the data directory; generated (mode 0600) when missing. `created` says whether to print it. */
export function ensureApiToken(dataDirectory: string): { token: string; created: boolean } {
  const existing = readApiToken(dataDirectory);
  if (existing) return { token: existing, created: false };
  const token = newToken();
  registerSecret(token);
  writeToken(dataDirectory, token);
  return { token, created: true };
}

/** Replaces the token; a running server picks the new one up on its next request. */
export function rotateApiToken(dataDirectory: string): string {
  const token = newToken();
  registerSecret(token);
  writeToken(dataDirectory, token);
  return token;
}

/**
 * Follows the token file, re-reading it only when its mtime or size change, so
 * `keyward token rotate` takes effect without restarting the server.
 */
export function createTokenFileSource(dataDirectory: string): () => string {
  let cached: { key: string; token: string } | undefined;
  return () => {
    const path = apiTokenPath(dataDirectory);
    const stats = statSync(path);
    const key = `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
    if (cached?.key !== key) {
      const token = readApiToken(dataDirectory);
      if (!token) {
        throw new KeywardError({
          code: 'UNAUTHORIZED',
          message: `The API token file ${path} is empty; run "keyward token rotate".`,
        });
      }
      cached = { key, token };
    }
    return cached.token;
  };
}

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
export function tokensMatch(presented: string, expected: string): boolean {
  const left = createHash('sha256').update(presented, 'utf8').digest();
  const right = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(left, right) && expected.length > 0;
}
