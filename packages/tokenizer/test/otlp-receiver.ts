import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// A recording OTLP/HTTP receiver on loopback: what a collector's OTLP receiver gets, as bytes.
// It answers like the collector (an empty export response) so the exporters see success.

export interface OtlpExport {
  path: string;
  contentType: string;
  body: Buffer;
}

export interface OtlpJsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  kind: number;
  attributes: OtlpJsonAttribute[];
  status?: { code?: number; message?: string };
}

export interface OtlpJsonAttribute {
  key: string;
  value: {
    stringValue?: string;
    intValue?: number | string;
    doubleValue?: number;
    boolValue?: boolean;
    arrayValue?: { values: OtlpJsonAttribute['value'][] };
  };
}

export interface OtlpReceiver {
  url: string;
  exports: OtlpExport[];
  /** Spans of every `http/json` trace export received so far, with their resource's attributes. */
  jsonSpans(): { span: OtlpJsonSpan; resource: OtlpJsonAttribute[] }[];
  /** Metric data of every `http/json` metrics export received so far. */
  jsonMetrics(): { name: string; data: unknown }[];
  /** Resolves when `predicate` holds, polling as exports arrive. */
  waitFor<T>(predicate: () => T | undefined, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const exports: OtlpExport[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const contentType = String(req.headers['content-type'] ?? '');
      exports.push({ path: req.url ?? '', contentType, body: Buffer.concat(chunks) });
      if (contentType.startsWith('application/json')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      } else {
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.end();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const jsonBodies = (path: string) =>
    exports
      .filter((item) => item.path === path && item.contentType.startsWith('application/json'))
      .map((item) => JSON.parse(item.body.toString('utf8')));
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    jsonSpans: () =>
      jsonBodies('/v1/traces').flatMap((body) =>
        (body.resourceSpans ?? []).flatMap(
          (resourceSpans: {
            resource?: { attributes?: OtlpJsonAttribute[] };
            scopeSpans?: { spans?: OtlpJsonSpan[] }[];
          }) =>
            (resourceSpans.scopeSpans ?? []).flatMap((scope) =>
              (scope.spans ?? []).map((span) => ({
                span,
                resource: resourceSpans.resource?.attributes ?? [],
              })),
            ),
        ),
      ),
    jsonMetrics: () =>
      jsonBodies('/v1/metrics').flatMap((body) =>
        (body.resourceMetrics ?? []).flatMap(
          (resourceMetrics: { scopeMetrics?: { metrics?: unknown[] }[] }) =>
            (resourceMetrics.scopeMetrics ?? []).flatMap((scope) =>
              (scope.metrics ?? []).map((metric) => {
                const { name, ...data } = metric as { name: string };
                return { name, data };
              }),
            ),
        ),
      ),
    async waitFor(predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = predicate();
        if (value !== undefined && value !== false) return value;
        if (Date.now() > deadline)
          throw new Error('the OTLP receiver did not get the expected export in time');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** An attribute's value as plain JSON (OTLP/JSON wraps each value in its type). */
export function attributeValue(attributes: OtlpJsonAttribute[], key: string): unknown {
  const found = attributes.find((attribute) => attribute.key === key);
  return found === undefined ? undefined : plain(found.value);
}

function plain(value: OtlpJsonAttribute['value']): unknown {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.arrayValue !== undefined) return value.arrayValue.values.map(plain);
  return undefined;
}
