import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KeywardError, registerSecret } from '@keyward/core';
import { dataDirectoryError } from '../data-directory-errors.js';

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

/**
 * Writes the token to a new file, then renames it over the old one: a reader (the running
 * server) sees the old token or the new one, never a truncated file, and a write that fails (a
 * full disk) leaves the old token in place.
 */
function writeToken(dataDirectory: string, token: string, consequence: string): void {
  const path = apiTokenPath(dataDirectory);
  const temporary = `${path}.${process.pid}.new`;
  try {
    mkdirSync(dataDirectory, { recursive: true, mode: 0o700 });
    writeFileSync(temporary, `${token}\n`, { mode: 0o600, flag: 'w' });
    // `mode` applies only when the file is created; a leftover temporary file gets it too.
    chmodSync(temporary, 0o600);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw dataDirectoryError(error, {
      directory: dataDirectory,
      doing: `write the API token ${path}`,
      consequence,
    });
  }
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
  writeToken(dataDirectory, token, 'The server did not start.');
  return { token, created: true };
}

/** Replaces the token; a running server picks the new one up on its next request. */
export function rotateApiToken(dataDirectory: string): string {
  const token = newToken();
  registerSecret(token);
  writeToken(dataDirectory, token, 'The previous token is unchanged and still works.');
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
