import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningTokenizerServer, startTokenizerServer } from '../src/proxy-server.js';
import { generateOpenKey, sealKeyFromOpenKey } from '../src/sealed-box.js';
import { bearerDigest, sealSecret } from '../src/secret.js';
import { tokenDigest, tokenFingerprint } from '../src/secret-resolver.js';
import { proxyRequest } from './proxy-client.js';
import { createLoopbackCertificates, type EchoServer, startEchoServer } from './tls-fixtures.js';

// The proxy's spans and metrics through the real OpenTelemetry Collector (keyward's build,
// scripts/images/build-otel-collector.sh, run as a process on loopback): its OTLP/HTTP receiver
// decodes the protobuf the SDK sends, and its file exporter writes what it understood.

const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const OPEN_KEY = generateOpenKey();
const PASSWORD = 'proxy-password-collector-2718';
const CREDENTIAL = 'raw-credential-collector-31415';
const CREDENTIAL_NAME = 'billing api';
const CALLER_SPAN_ID = '00f067aa0ba902b7';

let directory: string;
let collector: ChildProcess;
let collectorLog = '';
let echo: EchoServer;
let upstream: string;
let proxy: RunningTokenizerServer;
let token: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The JSON lines the collector's file exporter wrote so far, parsed. */
function exported(file: string): Record<string, unknown>[] {
  let text = '';
  try {
    text = readFileSync(join(directory, file), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function until<T>(read: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`the collector did not write ${what} in 60 s; its log:\n${collectorLog}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

interface CollectedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: Record<string, unknown> }[];
}

function spans(): CollectedSpan[] {
  return exported('traces.jsonl').flatMap((line) =>
    ((line.resourceSpans ?? []) as { scopeSpans?: { spans?: CollectedSpan[] }[] }[]).flatMap((resource) =>
      (resource.scopeSpans ?? []).flatMap((scope) => scope.spans ?? []),
    ),
  );
}

function attribute(span: CollectedSpan, key: string): unknown {
  const value = span.attributes.find((item) => item.key === key)?.value;
  if (value === undefined) return undefined;
  if ('arrayValue' in value) {
    return ((value.arrayValue as { values?: { stringValue?: string }[] }).values ?? []).map(
      (item) => item.stringValue,
    );
  }
  const [only] = Object.values(value);
  return typeof only === 'string' && 'intValue' in value ? Number(only) : only;
}

interface CollectedMetric {
  name: string;
  sum?: { dataPoints: { asInt?: string; attributes?: { key: string; value: { stringValue?: string } }[] }[] };
  histogram?: { dataPoints: { count: string; bucketCounts: string[]; explicitBounds: number[] }[] };
}

function metrics(): CollectedMetric[] {
  return exported('metrics.jsonl').flatMap((line) =>
    ((line.resourceMetrics ?? []) as { scopeMetrics?: { metrics?: CollectedMetric[] }[] }[]).flatMap(
      (resource) => (resource.scopeMetrics ?? []).flatMap((scope) => scope.metrics ?? []),
    ),
  );
}

beforeAll(async () => {
  // Builds the collector once per machine (scripts/setup.sh --tests does it first); prints the
  // image context, which holds the binary.
  const context = execFileSync(
    'bash',
    [join(repositoryRoot, 'scripts', 'images', 'build-otel-collector.sh')],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 40 * 60_000,
    },
  )
    .trim()
    .split('\n')
    .at(-1) as string;
  directory = mkdtempSync(join(tmpdir(), 'keyward-tokenizer-collector-'));
  const port = await freePort();
  writeFileSync(
    join(directory, 'config.yaml'),
    `receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${port}
processors:
  batch:
    timeout: 100ms
exporters:
  file/traces:
    path: ${join(directory, 'traces.jsonl')}
    flush_interval: 100ms
  file/metrics:
    path: ${join(directory, 'metrics.jsonl')}
    flush_interval: 100ms
service:
  # The collector's own metrics would listen on :8888, which another test may hold.
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file/traces]
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [file/metrics]
`,
  );
  collector = spawn(join(context, 'otelcol-keyward'), ['--config', join(directory, 'config.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  collector.stdout?.on('data', (chunk: Buffer) => {
    collectorLog += chunk.toString();
  });
  collector.stderr?.on('data', (chunk: Buffer) => {
    collectorLog += chunk.toString();
  });
  await until(() => (collectorLog.includes('Everything is ready') ? true : undefined), 'its ready line');

  const certificates = createLoopbackCertificates();
  echo = await startEchoServer(certificates);
  upstream = `127.0.0.1:${echo.port}`;
  token = sealSecret(
    {
      processor: { type: 'inject', token: CREDENTIAL },
      auth: { type: 'bearer', digest: bearerDigest(PASSWORD) },
      allowedHosts: [upstream],
    },
    sealKeyFromOpenKey(OPEN_KEY),
  );
  proxy = await startTokenizerServer({
    openKey: OPEN_KEY,
    listenAddress: '127.0.0.1:0',
    allowPrivateUpstreams: true,
    upstreamCa: certificates.caCertificatePem,
    allowedTokens: [`sha256:${tokenDigest(token)} ${CREDENTIAL_NAME}`],
    auditLog: false,
    log: () => {},
    // Default sampling and protocol (http/protobuf), as the CLI runs without OTEL_TRACES_SAMPLER.
    telemetry: {
      endpoint: `http://127.0.0.1:${port}`,
      serviceName: 'collector-test-tokenizer',
      spanExportDelayMs: 100,
      metricExportIntervalMs: 500,
    },
  });
}, 45 * 60_000);

afterAll(async () => {
  await proxy?.close();
  await echo?.close();
  collector?.kill('SIGTERM');
  if (directory) rmSync(directory, { recursive: true, force: true });
});

const send = (traceparent: string, path: string) =>
  proxyRequest(proxy.url, `http://${upstream}${path}`, {
    headers: { 'Proxy-Tokenizer': token, 'Proxy-Authorization': `Bearer ${PASSWORD}`, traceparent },
  });

describe('telemetry through the real OpenTelemetry Collector (OTLP/HTTP protobuf)', () => {
  const sampledTrace = randomBytes(16).toString('hex');
  const unsampledTrace = randomBytes(16).toString('hex');

  it("delivers the span of a request in the caller's trace, with the credential's name and fingerprint", async () => {
    expect((await send(`00-${unsampledTrace}-${CALLER_SPAN_ID}-00`, '/not-traced')).status).toBe(200);
    expect((await send(`00-${sampledTrace}-${CALLER_SPAN_ID}-01`, '/traced')).status).toBe(200);
    const span = await until(
      () => spans().find((item) => item.traceId === sampledTrace),
      "the traced request's span",
    );
    expect(span.parentSpanId).toBe(CALLER_SPAN_ID);
    expect(span.name).toBe('tokenizer GET');
    expect(attribute(span, 'url.path')).toBe('/traced');
    expect(attribute(span, 'http.response.status_code')).toBe(200);
    expect(attribute(span, 'server.port')).toBe(echo.port);
    expect(attribute(span, 'keyward.tokenizer.credential.fingerprints')).toEqual([tokenFingerprint(token)]);
    expect(attribute(span, 'keyward.tokenizer.credential.names')).toEqual([CREDENTIAL_NAME]);
    // The caller did not sample the other request: no span of it reached the collector.
    expect(spans().some((item) => item.traceId === unsampledTrace)).toBe(false);
    expect(spans().map((item) => attribute(item, 'url.path'))).not.toContain('/not-traced');
  });

  it('delivers the request counts and the latency histogram of every request, traced or not', async () => {
    const latest = await until(() => {
      const requests = metrics().filter((metric) => metric.name === 'keyward.tokenizer.requests');
      const points = requests.at(-1)?.sum?.dataPoints ?? [];
      const forwarded = points.find((point) =>
        point.attributes?.some(
          (item) => item.key === 'keyward.tokenizer.decision' && item.value.stringValue === 'forwarded',
        ),
      );
      return Number(forwarded?.asInt ?? 0) >= 2 ? metrics() : undefined;
    }, 'a request count of 2');
    const histogram = latest.filter((metric) => metric.name === 'keyward.tokenizer.request.duration').at(-1)
      ?.histogram?.dataPoints[0];
    expect(Number(histogram?.count)).toBeGreaterThanOrEqual(2);
    expect(histogram?.bucketCounts.reduce((total, count) => total + Number(count), 0)).toBe(
      Number(histogram?.count),
    );
    expect(histogram?.explicitBounds).toHaveLength(13);
    expect(latest.some((metric) => metric.name === 'keyward.tokenizer.requests.in_flight')).toBe(true);
  });

  it('leaves no credential, sealed token or proxy password in what the collector received', () => {
    const written = `${readFileSync(join(directory, 'traces.jsonl'), 'utf8')}${readFileSync(join(directory, 'metrics.jsonl'), 'utf8')}`;
    expect(written.length).toBeGreaterThan(0);
    for (const secret of [CREDENTIAL, token, PASSWORD, OPEN_KEY]) expect(written).not.toContain(secret);
  });
});
