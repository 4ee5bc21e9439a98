import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  apiTokenPath,
  createTokenFileSource,
  ensureApiToken,
  readApiToken,
  resolveDataDirectory,
  rotateApiToken,
  tokensMatch,
} from './api-token.js';

describe('API token', () => {
  it('is generated once, stored with mode 0600, then reused', () => {
    const directory = join(mkdtempSync(join(tmpdir(), 'keyward-token-')), 'data');
    const first = ensureApiToken(directory);
    expect(first.created).toBe(true);
    expect(first.token).toMatch(/^kw_[A-Za-z0-9_-]{43}$/);
    expect(statSync(apiTokenPath(directory)).mode & 0o777).toBe(0o600);
    expect(statSync(directory).mode & 0o777).toBe(0o700);
    expect(ensureApiToken(directory)).toEqual({ token: first.token, created: false });
  });

  it('rotates, tightens a loose file, and a file source follows the change', () => {
    const directory = mkdtempSync(join(tmpdir(), 'keyward-token-'));
    writeFileSync(apiTokenPath(directory), 'kw_old-token-value\n', { mode: 0o644 });
    const source = createTokenFileSource(directory);
    expect(source()).toBe('kw_old-token-value');
    const rotated = rotateApiToken(directory);
    expect(rotated).not.toBe('kw_old-token-value');
    expect(statSync(apiTokenPath(directory)).mode & 0o777).toBe(0o600);
    expect(source()).toBe(rotated);
    expect(readApiToken(directory)).toBe(rotated);
  });

  it('compares tokens of any length without throwing', () => {
    expect(tokensMatch('kw_abc', 'kw_abc')).toBe(true);
    expect(tokensMatch('kw_abd', 'kw_abc')).toBe(false);
    expect(tokensMatch('kw_abcdef-longer', 'kw_abc')).toBe(false);
    expect(tokensMatch('', '')).toBe(false);
  });

  it('uses KEYWARD_DATA_DIR, else ~/.keyward', () => {
    expect(resolveDataDirectory({ KEYWARD_DATA_DIR: '/srv/keyward' })).toBe('/srv/keyward');
    expect(resolveDataDirectory({})).toMatch(/\.keyward$/);
  });
});
