import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizerConfigFromEnv, parseGoBool } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

const OPEN_KEY = '0d88a36d5c41d5c3d97b929fdebf0bea57e5fb4616da88121ba972431a161cab';
const SEAL_KEY = 'a29dcbaa824af8f0a8d435df6ca1f27cfbf1d5aaa03f3f87fa0a58f8a34d8f67';
const directory = mkdtempSync(join(tmpdir(), 'keyward-config-'));

function expectConfigError(env: Record<string, string>, message: string) {
  try {
    loadTokenizerConfigFromEnv(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(message);
    expect((error as Error).message).not.toContain(OPEN_KEY.slice(0, 20));
    return;
  }
  throw new Error('expected a ConfigError');
}

describe('loadTokenizerConfigFromEnv', () => {
  it('reads the reference variables with their defaults', () => {
    const config = loadTokenizerConfigFromEnv({ OPEN_KEY });
    expect(config.openKey.sealKeyHex).toBe(SEAL_KEY);
    expect(config).toMatchObject({
      listenAddress: ':8080',
      filteredHeaders: [],
      tokenizerHostnames: [],
      openProxy: false,
      debug: false,
      allowPrivateUpstreams: false,
      workers: 1,
    });
    expect(config.adminListenAddress).toBeUndefined();
  });

  it('parses lists, booleans and keyward additions', () => {
    const caFile = join(directory, 'ca.pem');
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const config = loadTokenizerConfigFromEnv({
      OPEN_KEY,
      LISTEN_ADDRESS: '127.0.0.1:4001',
      FILTERED_HEADERS: 'Fly-Client-Ip, Fly-Region ,,',
      TOKENIZER_HOSTNAMES: 'tokenizer.internal,10.0.0.1',
      OPEN_PROXY: 'T',
      DEBUG: 'yes',
      ADMIN_LISTEN_ADDRESS: ':9090',
      TOKENIZER_ALLOW_PRIVATE_UPSTREAMS: '1',
      TOKENIZER_UPSTREAM_CA_FILE: caFile,
      TOKENIZER_WORKERS: '2',
      TOKENIZER_AUDIT_LOG: 'false',
    });
    expect(config).toMatchObject({
      listenAddress: '127.0.0.1:4001',
      filteredHeaders: ['Fly-Client-Ip', 'Fly-Region'],
      tokenizerHostnames: ['tokenizer.internal', '10.0.0.1'],
      openProxy: true,
      debug: false,
      adminListenAddress: ':9090',
      allowPrivateUpstreams: true,
      workers: 2,
      auditLog: false,
    });
    expect(String(config.upstreamCa)).toContain('BEGIN CERTIFICATE');
  });

  it('reads OPEN_KEY_FILE and trims its trailing newline', () => {
    const keyFile = join(directory, 'open.key');
    writeFileSync(keyFile, `${OPEN_KEY}\n`);
    expect(loadTokenizerConfigFromEnv({ OPEN_KEY_FILE: keyFile }).openKey.sealKeyHex).toBe(SEAL_KEY);
  });

  it.each([
    [{}, 'missing OPEN_KEY (or OPEN_KEY_FILE): set it to 64 hex characters (openssl rand -hex 32)'],
    [{ OPEN_KEY: `${OPEN_KEY}\n` }, 'OPEN_KEY: bad private key: not hex'],
    [{ OPEN_KEY: OPEN_KEY.slice(2) }, 'OPEN_KEY: bad private key size: 31'],
    [{ OPEN_KEY, OPEN_KEY_FILE: '/x' }, 'OPEN_KEY and OPEN_KEY_FILE are both set; set only one'],
    [{ OPEN_KEY_FILE: '/nonexistent/key' }, 'OPEN_KEY_FILE: cannot read /nonexistent/key: ENOENT'],
    [{ OPEN_KEY, TOKENIZER_WORKERS: 'many' }, 'TOKENIZER_WORKERS: must be a positive integer'],
    [{ OPEN_KEY, LISTEN_ADDRESS: '8080' }, 'LISTEN_ADDRESS: bad listen address "8080": missing port'],
    [
      { OPEN_KEY, ADMIN_LISTEN_ADDRESS: ':http' },
      'ADMIN_LISTEN_ADDRESS: bad listen address ":http": bad port',
    ],
    [
      { OPEN_KEY, TOKENIZER_UPSTREAM_CA_FILE: '/nonexistent/ca' },
      'TOKENIZER_UPSTREAM_CA_FILE: cannot read /nonexistent/ca: ENOENT',
    ],
    [
      { OPEN_KEY, REQUIRE_FLYSRC: 'true' },
      'USE_FLYSRC / REQUIRE_FLYSRC: Fly-Src verification only works inside Fly.io and is not supported',
    ],
  ])('refuses %j with a one-line message naming the variable', (env, message) => {
    expectConfigError(env as Record<string, string>, message);
  });

  it('names OPEN_KEY_FILE when the file holds a bad key', () => {
    const keyFile = join(directory, 'bad.key');
    writeFileSync(keyFile, 'not-a-key\n');
    expectConfigError({ OPEN_KEY_FILE: keyFile }, 'OPEN_KEY_FILE: bad private key: not hex');
  });

  it('reads TOKENIZER_ALLOWED_TOKENS_FILE, skipping blank lines and comments', () => {
    const listFile = join(directory, 'allowed-tokens');
    const digest = 'ab'.repeat(32);
    writeFileSync(
      listFile,
      `# issued by keyward\n${digest}\n\nsha256:${'CD'.repeat(32)}\nsha256:${'ef'.repeat(32)}  GitHub (ci bot)\r\n`,
    );
    const config = loadTokenizerConfigFromEnv({ OPEN_KEY, TOKENIZER_ALLOWED_TOKENS_FILE: listFile });
    expect(config.allowedTokens).toEqual([
      digest,
      `sha256:${'CD'.repeat(32)}`,
      `sha256:${'ef'.repeat(32)}  GitHub (ci bot)`,
    ]);
    const refusal =
      "is not a SHA-256 digest of a sealed token (64 hex characters, optionally prefixed sha256:), optionally followed by a space and the credential's name (one line, at most 256 characters)";
    writeFileSync(listFile, `${digest}\nnot-a-digest\n`);
    expectConfigError(
      { OPEN_KEY, TOKENIZER_ALLOWED_TOKENS_FILE: listFile },
      `TOKENIZER_ALLOWED_TOKENS_FILE: line 2 ${refusal}`,
    );
    for (const line of [`${digest}github`, `${digest} ${'n'.repeat(257)}`, `${digest} git\u0007hub`]) {
      writeFileSync(listFile, `${line}\n`);
      expectConfigError(
        { OPEN_KEY, TOKENIZER_ALLOWED_TOKENS_FILE: listFile },
        `TOKENIZER_ALLOWED_TOKENS_FILE: line 1 ${refusal}`,
      );
    }
    expectConfigError(
      { OPEN_KEY, TOKENIZER_ALLOWED_TOKENS_FILE: join(directory, 'missing') },
      `TOKENIZER_ALLOWED_TOKENS_FILE: cannot read ${join(directory, 'missing')}: ENOENT`,
    );
  });

  it('parses booleans like Go strconv.ParseBool (anything else is false)', () => {
    for (const value of ['1', 't', 'T', 'TRUE', 'true', 'True']) expect(parseGoBool(value)).toBe(true);
    for (const value of ['0', 'false', 'yes', 'on', '', undefined]) expect(parseGoBool(value)).toBe(false);
  });
});

describe('OpenTelemetry variables', () => {
  it('leaves telemetry off without OTEL_EXPORTER_OTLP_ENDPOINT, or with OTEL_SDK_DISABLED', () => {
    expect(loadTokenizerConfigFromEnv({ OPEN_KEY }).telemetry).toBeUndefined();
    expect(
      loadTokenizerConfigFromEnv({
        OPEN_KEY,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318',
        OTEL_SDK_DISABLED: 'true',
      }).telemetry,
    ).toBeUndefined();
  });

  it('reads the endpoint, protocol, service name, headers and metric interval', () => {
    expect(
      loadTokenizerConfigFromEnv({
        OPEN_KEY,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'demo-tokenizer',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=a%20b, authorization=Bearer%20xyz',
        OTEL_METRIC_EXPORT_INTERVAL: '15000',
      }).telemetry,
    ).toEqual({
      endpoint: 'http://otel:4318',
      protocol: 'http/json',
      serviceName: 'demo-tokenizer',
      headers: { 'x-tenant': 'a b', authorization: 'Bearer xyz' },
      metricExportIntervalMs: 15000,
    });
  });

  it.each([
    [{}, undefined],
    [{ OTEL_TRACES_SAMPLER: 'always_on' }, { followParent: false, ratio: 1 }],
    [{ OTEL_TRACES_SAMPLER: 'always_off' }, { followParent: false, ratio: 0 }],
    [{ OTEL_TRACES_SAMPLER: 'parentbased_always_on' }, { followParent: true, ratio: 1 }],
    [{ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, { followParent: true, ratio: 0 }],
    [
      { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' },
      { followParent: false, ratio: 0.25 },
    ],
    // The specification's default argument.
    [{ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' }, { followParent: true, ratio: 1 }],
    // The argument alone sets the ratio of the default sampler.
    [{ OTEL_TRACES_SAMPLER_ARG: '.5' }, { followParent: true, ratio: 0.5 }],
  ])('reads the sampler from %j', (env, sampling) => {
    const telemetry = loadTokenizerConfigFromEnv({
      OPEN_KEY,
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318',
      ...env,
    }).telemetry;
    expect(telemetry?.sampling).toEqual(sampling);
  });

  it('reads the span batching variables', () => {
    expect(
      loadTokenizerConfigFromEnv({
        OPEN_KEY,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318',
        OTEL_BSP_SCHEDULE_DELAY: '250',
        OTEL_BSP_MAX_QUEUE_SIZE: '1000',
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '100',
        OTEL_BSP_EXPORT_TIMEOUT: '5000',
      }).telemetry,
    ).toEqual({
      endpoint: 'http://otel:4318',
      spanExportDelayMs: 250,
      spanQueueSize: 1000,
      spanBatchSize: 100,
      spanExportTimeoutMs: 5000,
    });
  });

  it.each([
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318', OTEL_TRACES_SAMPLER: 'jaeger_remote' },
      'OTEL_TRACES_SAMPLER: "jaeger_remote" is not supported; use one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318', OTEL_TRACES_SAMPLER_ARG: '1.5' },
      'OTEL_TRACES_SAMPLER_ARG: "1.5" is not a ratio; write a number from 0 to 1, for example 0.1 for one request in ten',
    ],
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318',
        OTEL_TRACES_SAMPLER: 'traceidratio',
        OTEL_TRACES_SAMPLER_ARG: 'ten percent',
      },
      'OTEL_TRACES_SAMPLER_ARG: "ten percent" is not a ratio; write a number from 0 to 1, for example 0.1 for one request in ten',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318', OTEL_BSP_MAX_QUEUE_SIZE: '-1' },
      'OTEL_BSP_MAX_QUEUE_SIZE: must be a positive number of spans',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'otel:4318' },
      'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' },
      'OTEL_EXPORTER_OTLP_ENDPOINT: not a URL; write the collector\'s OTLP/HTTP base URL, for example "http://otel-collector:4318"',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      'OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported; use "http/protobuf" or "http/json" (OTLP over HTTP, port 4318)',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318', OTEL_METRIC_EXPORT_INTERVAL: '1s' },
      'OTEL_METRIC_EXPORT_INTERVAL: must be a positive number of milliseconds',
    ],
  ])('refuses %j with a message naming the variable', (env, message) => {
    expectConfigError({ OPEN_KEY, ...env }, message);
  });
});
