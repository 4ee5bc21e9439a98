import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../src/audit-log.js';
import { type RunningTokenizerServer, startTokenizerServer } from '../src/proxy-server.js';
import { generateOpenKey, sealKeyFromOpenKey } from '../src/sealed-box.js';
import { bearerDigest, sealSecret } from '../src/secret.js';
import { tokenDigest, tokenFingerprint } from '../src/secret-resolver.js';
import { attributeValue, type OtlpReceiver, startOtlpReceiver } from './otlp-receiver.js';
import { proxyRequest } from './proxy-client.js';
import { createLoopbackCertificates, type EchoServer, startEchoServer } from './tls-fixtures.js';

// Spans and metrics exported over OTLP/HTTP to a recording receiver on loopback (the bytes a
// collector's OTLP receiver gets), in both encodings, with the upstream a real HTTPS server.

const OPEN_KEY = generateOpenKey();
const SEAL_KEY = sealKeyFromOpenKey(OPEN_KEY);
const PASSWORD = 'proxy-password-telemetry-5150';
const CREDENTIAL = 'raw-credential-telemetry-8675309';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN_ID = '00f067aa0ba902b7';

let echo: EchoServer;
let upstream: string;
let receiver: OtlpReceiver;
/** Default sampling: the caller's decision, one in ten of the others (http/json). */
let jsonProxy: RunningTokenizerServer;
/** parentbased_always_on, and the token's credential named on the allow-list (http/json). */
let tracingProxy: RunningTokenizerServer;
/** parentbased_always_off: only requests whose caller sampled them are traced (http/json). */
let untracedProxy: RunningTokenizerServer;
let protobufProxy: RunningTokenizerServer;
let token: string;
const audit: AuditEntry[] = [];
const CREDENTIAL_NAME = 'stripe live (billing)';

beforeAll(async () => {
  const certificates = createLoopbackCertificates();
  echo = await startEchoServer(certificates);
  upstream = `127.0.0.1:${echo.port}`;
  receiver = await startOtlpReceiver();
  token = sealSecret(
    {
      processor: { type: 'inject', token: CREDENTIAL },
      auth: { type: 'bearer', digest: bearerDigest(PASSWORD) },
      allowedHosts: [upstream],
    },
    SEAL_KEY,
  );
  const common = {
    openKey: OPEN_KEY,
    listenAddress: '127.0.0.1:0',
    allowPrivateUpstreams: true,
    upstreamCa: certificates.caCertificatePem,
    auditLog: (entry: AuditEntry) => audit.push(entry),
    log: () => {},
  };
  const json = {
    endpoint: receiver.url,
    protocol: 'http/json' as const,
    serviceName: 'demo-tokenizer',
    spanExportDelayMs: 100,
    metricExportIntervalMs: 300,
  };
  jsonProxy = await startTokenizerServer({ ...common, telemetry: json });
  tracingProxy = await startTokenizerServer({
    ...common,
    allowedTokens: [`sha256:${tokenDigest(token)} ${CREDENTIAL_NAME}`],
    telemetry: { ...json, sampling: { followParent: true, ratio: 1 } },
  });
  untracedProxy = await startTokenizerServer({
    ...common,
    telemetry: { ...json, sampling: { followParent: true, ratio: 0 } },
  });
  protobufProxy = await startTokenizerServer({
    ...common,
    telemetry: { endpoint: `${receiver.url}/`, spanExportDelayMs: 100, metricExportIntervalMs: 300 },
  });
}, 60_000);

afterAll(async () => {
  await jsonProxy?.close();
  await tracingProxy?.close();
  await untracedProxy?.close();
  await protobufProxy?.close();
  await receiver?.close();
  await echo?.close();
});

const send = (proxyUrl: string, headers: Record<string, string>, path = '/echo') =>
  proxyRequest(proxyUrl, `http://${upstream}${path}`, {
    headers: { 'Proxy-Tokenizer': token, 'Proxy-Authorization': `Bearer ${PASSWORD}`, ...headers },
  });
const echoedHeaders = (body: string) => (JSON.parse(body) as { headers: Record<string, string> }).headers;
const randomTraceId = () => randomBytes(16).toString('hex');

describe('telemetry (OTLP/HTTP)', () => {
  it("joins the caller's trace, tells the upstream, and exports one span with the request's outcome", async () => {
    const response = await send(jsonProxy.url, {
      traceparent: `00-${TRACE_ID}-${CALLER_SPAN_ID}-01`,
      tracestate: 'agent=t61rcWkgMzE',
    });
    expect(response.status).toBe(200);
    const echoed = JSON.parse(response.body) as { headers: Record<string, string> };
    expect(echoed.headers.authorization).toBe(`Bearer ${CREDENTIAL}`);
    // The upstream's parent is the proxy's span, in the caller's trace.
    const upstreamParent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(echoed.headers.traceparent ?? '');
    expect(upstreamParent?.[1]).toBe(TRACE_ID);
    expect(upstreamParent?.[2]).not.toBe(CALLER_SPAN_ID);
    expect(echoed.headers.tracestate).toBe('agent=t61rcWkgMzE');

    const { span, resource } = await receiver.waitFor(() =>
      receiver.jsonSpans().find((item) => item.span.traceId === TRACE_ID),
    );
    expect(span.spanId).toBe(upstreamParent?.[2]);
    expect(span.parentSpanId).toBe(CALLER_SPAN_ID);
    expect(span.name).toBe('tokenizer GET');
    expect(attributeValue(resource, 'service.name')).toBe('demo-tokenizer');
    const attribute = (key: string) => attributeValue(span.attributes, key);
    expect(attribute('http.request.method')).toBe('GET');
    expect(attribute('server.address')).toBe('127.0.0.1');
    expect(attribute('server.port')).toBe(echo.port);
    expect(attribute('url.path')).toBe('/echo');
    expect(attribute('http.response.status_code')).toBe(200);
    expect(attribute('keyward.tokenizer.decision')).toBe('forwarded');
    expect(attribute('keyward.tokenizer.credential.fingerprints')).toEqual([tokenFingerprint(token)]);
    // No allow-list on this proxy: the fingerprint is all it knows of the credential.
    expect(attribute('keyward.tokenizer.credential.names')).toBeUndefined();
    expect(Number(span.endTimeUnixNano) - Number(span.startTimeUnixNano)).toBeGreaterThan(0);
    expect(span.traceState).toBe('agent=t61rcWkgMzE');
    expect(attribute('error.type')).toBeUndefined();
    const entry = audit.find((item) => item.path === '/echo' && item.decision === 'forwarded');
    expect(entry?.credentials).toEqual([tokenFingerprint(token)]);
  });

  it('starts a new trace for a request it samples without traceparent, and gives the upstream its context', async () => {
    const response = await send(tracingProxy.url, {}, '/no-parent');
    const traceparent = echoedHeaders(response.body).traceparent;
    const [, traceId, spanId] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(traceparent ?? '') ?? [];
    expect(traceId).toBeDefined();
    const { span } = await receiver.waitFor(() =>
      receiver.jsonSpans().find((item) => item.span.traceId === traceId),
    );
    expect(span.spanId).toBe(spanId);
    expect(span.parentSpanId ?? '').toBe('');
    expect(attributeValue(span.attributes, 'url.path')).toBe('/no-parent');
  });

  it('names the credential as the allow-list does, next to its fingerprint', async () => {
    const traceId = randomTraceId();
    const response = await send(tracingProxy.url, { traceparent: `00-${traceId}-${CALLER_SPAN_ID}-01` });
    expect(response.status).toBe(200);
    const { span } = await receiver.waitFor(() =>
      receiver.jsonSpans().find((item) => item.span.traceId === traceId),
    );
    expect(attributeValue(span.attributes, 'keyward.tokenizer.credential.fingerprints')).toEqual([
      tokenFingerprint(token),
    ]);
    expect(attributeValue(span.attributes, 'keyward.tokenizer.credential.names')).toEqual([CREDENTIAL_NAME]);
  });

  it("exports no span for a request it does not sample, and passes the caller's context on untouched", async () => {
    // The caller did not sample its trace (flags 00): parent-based sampling follows it.
    const unsampledTrace = randomTraceId();
    const unsampledParent = `00-${unsampledTrace}-${CALLER_SPAN_ID}-00`;
    const fromUnsampledCaller = await send(
      jsonProxy.url,
      { traceparent: unsampledParent, tracestate: 'agent=off' },
      '/unsampled-caller',
    );
    expect(fromUnsampledCaller.status).toBe(200);
    expect(echoedHeaders(fromUnsampledCaller.body).traceparent).toBe(unsampledParent);
    expect(echoedHeaders(fromUnsampledCaller.body).tracestate).toBe('agent=off');
    // No trace context and a ratio of 0: no span, and the upstream gets no traceparent either.
    const withoutContext = await send(untracedProxy.url, {}, '/unsampled-root');
    expect(withoutContext.status).toBe(200);
    expect(echoedHeaders(withoutContext.body).traceparent).toBeUndefined();
    // Spans leave in the order they ended, one export at a time: once a span of each proxy that
    // ended later has arrived, a span of the unsampled requests would have arrived too.
    const markers = [randomTraceId(), randomTraceId()];
    await send(jsonProxy.url, { traceparent: `00-${markers[0]}-${CALLER_SPAN_ID}-01` }, '/marker');
    await send(untracedProxy.url, { traceparent: `00-${markers[1]}-${CALLER_SPAN_ID}-01` }, '/marker');
    await receiver.waitFor(() =>
      markers.every((marker) => receiver.jsonSpans().some((item) => item.span.traceId === marker)),
    );
    const paths = receiver.jsonSpans().map((item) => attributeValue(item.span.attributes, 'url.path'));
    expect(paths).toContain('/marker');
    expect(paths).not.toContain('/unsampled-caller');
    expect(paths).not.toContain('/unsampled-root');
    expect(receiver.jsonSpans().some((item) => item.span.traceId === unsampledTrace)).toBe(false);
    // They are still counted.
    expect(audit.filter((entry) => entry.path.startsWith('/unsampled-'))).toHaveLength(2);
  });

  it('records a refusal with its class, and never reaches the upstream', async () => {
    let reached = 0;
    echo.routes.set('/refused', () => {
      reached++;
      return { status: 200, body: 'should not get here' };
    });
    const refusedTrace = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1';
    const response = await send(
      jsonProxy.url,
      {
        'Proxy-Authorization': 'Bearer wrong-password',
        traceparent: `00-${refusedTrace}-${CALLER_SPAN_ID}-01`,
      },
      '/refused',
    );
    expect(response.status).toBe(407);
    expect(reached).toBe(0);
    const { span } = await receiver.waitFor(() =>
      receiver.jsonSpans().find((item) => item.span.traceId === refusedTrace),
    );
    const entry = audit.find((item) => item.path === '/refused');
    expect(entry?.error).toBeTruthy();
    expect(attributeValue(span.attributes, 'keyward.tokenizer.decision')).toBe('denied');
    expect(attributeValue(span.attributes, 'http.response.status_code')).toBe(407);
    expect(attributeValue(span.attributes, 'error.type')).toBe(entry?.error);
    expect(attributeValue(span.attributes, 'keyward.tokenizer.credential.fingerprints')).toEqual([
      tokenFingerprint(token),
    ]);
  });

  it('exports request counts by outcome, the latency histogram and requests in flight', async () => {
    const metrics = await receiver.waitFor(() => {
      const all = receiver.jsonMetrics();
      const names = new Set(all.map((metric) => metric.name));
      return names.has('keyward.tokenizer.requests') &&
        names.has('keyward.tokenizer.request.duration') &&
        names.has('keyward.tokenizer.requests.in_flight') &&
        JSON.stringify(all).includes('"denied"')
        ? all
        : undefined;
    });
    const requests = metrics.filter((metric) => metric.name === 'keyward.tokenizer.requests');
    const points = requests.flatMap(
      (metric) =>
        (
          metric.data as {
            sum: { dataPoints: { attributes: never[]; asInt?: number | string; asDouble?: number }[] };
          }
        ).sum.dataPoints,
    );
    const outcomes = points.map((point) => ({
      decision: attributeValue(point.attributes, 'keyward.tokenizer.decision'),
      status: attributeValue(point.attributes, 'http.response.status_code'),
      count: Number(point.asInt ?? point.asDouble),
    }));
    // The default proxy forwarded three requests by now, one of them sampled: all are counted.
    const forwarded = outcomes.filter((item) => item.decision === 'forwarded' && item.status === 200);
    expect(Math.max(...forwarded.map((item) => item.count))).toBeGreaterThanOrEqual(3);
    const refused = outcomes.filter((item) => item.decision === 'denied' && item.status === 407);
    expect(Math.max(...refused.map((item) => item.count))).toBeGreaterThanOrEqual(1);
    const histograms = metrics
      .filter((metric) => metric.name === 'keyward.tokenizer.request.duration')
      .map(
        (metric) =>
          metric.data as {
            unit: string;
            histogram: {
              aggregationTemporality: number;
              dataPoints: {
                count: number | string;
                sum: number;
                min: number;
                max: number;
                bucketCounts: (number | string)[];
                explicitBounds: number[];
              }[];
            };
          },
      );
    expect(histograms.every((histogram) => histogram.unit === 's')).toBe(true);
    // Cumulative (2), every request in one bucket, the Prometheus boundaries.
    expect(histograms[0]?.histogram.aggregationTemporality).toBe(2);
    const point = histograms
      .flatMap((histogram) => histogram.histogram.dataPoints)
      .find((item) => Number(item.count) >= 3);
    expect(point).toBeDefined();
    expect(point?.bucketCounts.reduce((total: number, count) => total + Number(count), 0)).toBe(
      Number(point?.count),
    );
    expect(point?.explicitBounds).toEqual([
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]);
    expect(point?.sum).toBeGreaterThan(0);
    expect(point?.min).toBeGreaterThan(0);
    expect(point?.max).toBeGreaterThanOrEqual(point?.min ?? Number.POSITIVE_INFINITY);
  });

  it('exports protobuf by default, in the same trace', async () => {
    const protobufTrace = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2';
    const response = await send(protobufProxy.url, {
      traceparent: `00-${protobufTrace}-${CALLER_SPAN_ID}-01`,
    });
    expect(response.status).toBe(200);
    const traceBytes = Buffer.from(protobufTrace, 'hex');
    const exported = await receiver.waitFor(() =>
      receiver.exports.find(
        (item) =>
          item.path === '/v1/traces' &&
          item.contentType === 'application/x-protobuf' &&
          item.body.includes(traceBytes),
      ),
    );
    expect(exported.body.includes(Buffer.from('keyward.tokenizer.credential.fingerprints'))).toBe(true);
    expect(exported.body.includes(Buffer.from(tokenFingerprint(token)))).toBe(true);
  });

  it('exports no credential, sealed token, proxy password or key in any span or metric', async () => {
    await receiver.waitFor(() =>
      receiver.exports.some(
        (item) => item.path === '/v1/metrics' && item.contentType === 'application/x-protobuf',
      ),
    );
    expect(receiver.exports.length).toBeGreaterThan(4);
    const secrets = [CREDENTIAL, token, PASSWORD, `Bearer ${CREDENTIAL}`, OPEN_KEY];
    for (const exported of receiver.exports) {
      for (const secret of secrets) {
        expect(exported.body.includes(Buffer.from(secret)), `${exported.path} holds a secret`).toBe(false);
        // Base64 of the raw value, should an encoder ever wrap it.
        expect(exported.body.includes(Buffer.from(Buffer.from(secret).toString('base64')))).toBe(false);
      }
    }
  });
});

describe('telemetry off', () => {
  // The built package, as users run it, with a loader hook recording every module it loads.
  const packageDirectory = join(dirname(fileURLToPath(import.meta.url)), '..');
  const directory = mkdtempSync(join(tmpdir(), 'keyward-telemetry-'));

  beforeAll(() => {
    execFileSync('pnpm', ['run', 'build'], { cwd: packageDirectory, stdio: 'pipe' });
    writeFileSync(
      join(directory, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.LOADED_MODULES_FILE, url + '\\n');
  return next(url, context);
}
`,
    );
    writeFileSync(
      join(directory, 'register.mjs'),
      `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${join(directory, 'hooks.mjs')}`)});\n`,
    );
    writeFileSync(
      join(directory, 'proxy.mjs'),
      `import { request } from 'node:http';
import { startTokenizerServer } from ${JSON.stringify(join(packageDirectory, 'dist', 'index.js'))};
const endpoint = process.env.ENDPOINT;
const proxy = await startTokenizerServer({
  openKey: ${JSON.stringify(OPEN_KEY)},
  listenAddress: '127.0.0.1:0',
  auditLog: false,
  log: () => {},
  ...(endpoint ? { telemetry: { endpoint } } : {}),
});
const url = new URL(proxy.url);
const status = await new Promise((resolve, reject) => {
  // A caller that samples its trace: traced under the default sampling.
  const headers = { host: 'example.com', traceparent: '00-${TRACE_ID}-${CALLER_SPAN_ID}-01' };
  const outgoing = request({ host: url.hostname, port: url.port, path: 'http://example.com/', headers }, (response) => {
    response.resume();
    response.on('end', () => resolve(response.statusCode));
  });
  outgoing.on('error', reject);
  outgoing.end();
});
await proxy.close();
console.log(status);
`,
    );
  }, 120_000);

  // Asynchronous: the child exports to the receiver in this process, which must keep answering.
  const run = async (name: string, endpoint: string | undefined) => {
    const loadedFile = join(directory, `${name}.loaded`);
    writeFileSync(loadedFile, '');
    const result = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--import', join(directory, 'register.mjs'), join(directory, 'proxy.mjs')],
        {
          env: {
            PATH: process.env.PATH ?? '',
            LOADED_MODULES_FILE: loadedFile,
            ...(endpoint ? { ENDPOINT: endpoint } : {}),
          },
          encoding: 'utf8',
          timeout: 60_000,
        },
        (error, stdout, stderr) => (error ? reject(error) : resolve({ stdout, stderr })),
      ),
    );
    expect(result.stderr).toBe('');
    // No Proxy-Tokenizer: refused (400) on the request path, telemetry or not.
    expect(result.stdout.trim()).toBe('400');
    return readFileSync(loadedFile, 'utf8').split('\n').filter(Boolean);
  };

  it('loads no OpenTelemetry module when telemetry is not configured', async () => {
    const loaded = await run('off', undefined);
    expect(loaded.some((url) => url.endsWith('/dist/proxy-request-handler.js'))).toBe(true);
    expect(loaded.filter((url) => url.includes('opentelemetry') || url.includes('telemetry-sdk'))).toEqual(
      [],
    );
  });

  it('loads the SDK and the OTLP exporters when it is', async () => {
    const loaded = await run('on', receiver.url);
    expect(loaded.some((url) => url.endsWith('/dist/telemetry-sdk.js'))).toBe(true);
    expect(loaded.some((url) => url.includes('@opentelemetry/sdk-trace-base'))).toBe(true);
    expect(loaded.some((url) => url.includes('@opentelemetry/exporter-trace-otlp-proto'))).toBe(true);
    // The refused request's span reached the receiver when the proxy closed (default service name).
    expect(
      receiver.exports.some(
        (item) => item.path === '/v1/traces' && item.body.includes(Buffer.from('keyward-tokenizer')),
      ),
    ).toBe(true);
  });
});
