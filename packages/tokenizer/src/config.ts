import { readFileSync } from 'node:fs';
import { ConfigError, type TokenizerError } from './errors.js';
import { parseListenAddress, type TokenizerServerOptions } from './proxy-server.js';
import { OpenKey } from './sealed-box.js';
import { parseAllowedTokenEntry } from './secret-resolver.js';
import { telemetryOptionsFromEnv } from './telemetry.js';

export type Environment = Readonly<Record<string, string | undefined>>;

/** Go strconv.ParseBool; the reference treats anything unparsable as false. */
export function parseGoBool(value: string | undefined): boolean {
  return value !== undefined && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value);
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

function readFile(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `${variable}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

function positiveInteger(variable: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new ConfigError(`${variable}: must be a positive integer`);
  return Number(value);
}

/** OPEN_KEY or OPEN_KEY_FILE (one trailing newline / surrounding whitespace trimmed). */
export function loadOpenKeyFromEnv(env: Environment): OpenKey {
  const inline = env.OPEN_KEY;
  const file = env.OPEN_KEY_FILE;
  if (inline && file) throw new ConfigError('OPEN_KEY and OPEN_KEY_FILE are both set; set only one');
  let variable = 'OPEN_KEY';
  let text: string;
  if (file) {
    variable = 'OPEN_KEY_FILE';
    text = readFile(variable, file).trim();
  } else if (inline) {
    text = inline;
  } else {
    throw new ConfigError(
      'missing OPEN_KEY (or OPEN_KEY_FILE): set it to 64 hex characters (openssl rand -hex 32)',
    );
  }
  try {
    return OpenKey.fromHex(text);
  } catch (error) {
    // The message names the problem, never the value.
    throw new ConfigError(`${variable}: ${(error as TokenizerError).message}`);
  }
}

export interface TokenizerEnvironmentConfig extends TokenizerServerOptions {
  openKey: OpenKey;
  /** node:cluster worker processes (TOKENIZER_WORKERS); 1 = single process. */
  workers: number;
}

/**
 * The reference's environment variables (OPEN_KEY, OPEN_KEY_FILE, LISTEN_ADDRESS,
 * FILTERED_HEADERS, TOKENIZER_HOSTNAMES, OPEN_PROXY, DEBUG) plus keyward's own:
 * ADMIN_LISTEN_ADDRESS, TOKENIZER_ALLOW_PRIVATE_UPSTREAMS, TOKENIZER_UPSTREAM_CA_FILE,
 * TOKENIZER_WORKERS, TOKENIZER_MAX_BODY_BYTES, TOKENIZER_SECRET_CACHE_SIZE, TOKENIZER_AUDIT_LOG,
 * TOKENIZER_ALLOWED_TOKENS_FILE; and OpenTelemetry's (OTEL_EXPORTER_OTLP_ENDPOINT, …: see
 * telemetryOptionsFromEnv).
 * Throws ConfigError with a one-line message naming the variable.
 */
export function loadTokenizerConfigFromEnv(env: Environment = process.env): TokenizerEnvironmentConfig {
  if (parseGoBool(env.REQUIRE_FLYSRC) || parseGoBool(env.USE_FLYSRC)) {
    throw new ConfigError(
      'USE_FLYSRC / REQUIRE_FLYSRC: Fly-Src verification only works inside Fly.io and is not supported',
    );
  }
  const config: TokenizerEnvironmentConfig = {
    openKey: loadOpenKeyFromEnv(env),
    listenAddress: env.LISTEN_ADDRESS || ':8080',
    filteredHeaders: list(env.FILTERED_HEADERS),
    tokenizerHostnames: list(env.TOKENIZER_HOSTNAMES),
    openProxy: parseGoBool(env.OPEN_PROXY),
    debug: parseGoBool(env.DEBUG),
    allowPrivateUpstreams: parseGoBool(env.TOKENIZER_ALLOW_PRIVATE_UPSTREAMS),
    workers: positiveInteger('TOKENIZER_WORKERS', env.TOKENIZER_WORKERS) ?? 1,
  };
  if (env.ADMIN_LISTEN_ADDRESS) config.adminListenAddress = env.ADMIN_LISTEN_ADDRESS;
  for (const [variable, address] of [
    ['LISTEN_ADDRESS', config.listenAddress],
    ['ADMIN_LISTEN_ADDRESS', config.adminListenAddress],
  ] as const) {
    if (address === undefined) continue;
    try {
      parseListenAddress(address);
    } catch (error) {
      throw new ConfigError(`${variable}: ${(error as Error).message}`);
    }
  }
  if (env.TOKENIZER_UPSTREAM_CA_FILE) {
    const pem = readFile('TOKENIZER_UPSTREAM_CA_FILE', env.TOKENIZER_UPSTREAM_CA_FILE);
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new ConfigError('TOKENIZER_UPSTREAM_CA_FILE: no PEM certificate in the file');
    }
    config.upstreamCa = pem;
  }
  const maxBody = positiveInteger('TOKENIZER_MAX_BODY_BYTES', env.TOKENIZER_MAX_BODY_BYTES);
  if (maxBody !== undefined) config.maxBodyBytes = maxBody;
  const cacheSize = positiveInteger('TOKENIZER_SECRET_CACHE_SIZE', env.TOKENIZER_SECRET_CACHE_SIZE);
  if (cacheSize !== undefined) config.secretCacheSize = cacheSize;
  if (env.TOKENIZER_AUDIT_LOG !== undefined && !parseGoBool(env.TOKENIZER_AUDIT_LOG)) config.auditLog = false;
  if (env.TOKENIZER_ALLOWED_TOKENS_FILE) {
    config.allowedTokens = readAllowedTokens(env.TOKENIZER_ALLOWED_TOKENS_FILE);
  }
  const telemetry = telemetryOptionsFromEnv(env);
  if (telemetry !== undefined) config.telemetry = telemetry;
  return config;
}

/**
 * One SHA-256 per line (`sha256:` prefix optional), optionally followed by the credential's name;
 * blank lines and `#` comments ignored.
 */
function readAllowedTokens(path: string): string[] {
  const variable = 'TOKENIZER_ALLOWED_TOKENS_FILE';
  const entries: string[] = [];
  for (const [index, raw] of readFile(variable, path).split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (parseAllowedTokenEntry(line) === undefined) {
      throw new ConfigError(
        `${variable}: line ${index + 1} is not a SHA-256 digest of a sealed token (64 hex characters, optionally prefixed sha256:), optionally followed by a space and the credential's name (one line, at most 256 characters)`,
      );
    }
    entries.push(line);
  }
  return entries;
}
