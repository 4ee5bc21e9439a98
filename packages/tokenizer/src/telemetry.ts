import type { AuditEntry } from './audit-log.js';
import { ConfigError } from './errors.js';
import type { OutgoingHeaders } from './outgoing-request.js';

// Spans and metrics through OpenTelemetry. This file holds no OpenTelemetry import: the SDK
// (telemetry-sdk.ts) is loaded only when telemetry is configured, so the proxy used on its own
// neither loads nor pays for it.

export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface TokenizerTelemetryOptions {
  /** OTLP/HTTP base URL (`http://collector:4318`): spans go to `/v1/traces`, metrics to `/v1/metrics`. */
  endpoint: string;
  /** Default `http/protobuf`, the OTLP default. */
  protocol?: OtlpProtocol;
  /** `service.name` of the spans and metrics. Default `keyward-tokenizer`. */
  serviceName?: string;
  /** How often metrics are exported. Default 60 s (OTEL_METRIC_EXPORT_INTERVAL). */
  metricExportIntervalMs?: number;
  /** How often queued spans are exported. Default 1 s. */
  spanExportDelayMs?: number;
  /** Extra headers on every export request (OTEL_EXPORTER_OTLP_HEADERS). */
  headers?: Readonly<Record<string, string>>;
}

/** What the request handler calls; implemented in telemetry-sdk.ts. */
export interface RequestTelemetry {
  /**
   * Starts the request's span, a child of the caller's W3C trace context when the headers carry
   * one, and writes the span's own `traceparent` (and the caller's `tracestate`) into them, so
   * the upstream sees the same trace.
   */
  startRequest(headers: OutgoingHeaders, method: string): unknown;
  /** Ends the span with the audit entry's outcome and records the request's metrics. */
  endRequest(span: unknown, entry: AuditEntry, durationSeconds: number): void;
  /** A request refused before it could be parsed: metrics only. */
  recordMalformed(status: number): void;
  /** Requests in flight, read when metrics are collected. */
  observeInFlight(read: () => number): void;
  /** Exports what is queued and stops. */
  shutdown(): Promise<void>;
}

/** Loads the OpenTelemetry SDK and builds the exporters. */
export async function loadTelemetry(options: TokenizerTelemetryOptions): Promise<RequestTelemetry> {
  const { createRequestTelemetry } = await import('./telemetry-sdk.js');
  return createRequestTelemetry(options);
}

type Environment = Readonly<Record<string, string | undefined>>;

/**
 * The standard OpenTelemetry variables: OTEL_EXPORTER_OTLP_ENDPOINT (telemetry is off without
 * it), OTEL_EXPORTER_OTLP_PROTOCOL (`http/protobuf` or `http/json`), OTEL_SERVICE_NAME,
 * OTEL_EXPORTER_OTLP_HEADERS, OTEL_METRIC_EXPORT_INTERVAL; OTEL_SDK_DISABLED=true turns it off.
 */
export function telemetryOptionsFromEnv(env: Environment): TokenizerTelemetryOptions | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!endpoint || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError(
      'OTEL_EXPORTER_OTLP_ENDPOINT: not a URL; write the collector\'s OTLP/HTTP base URL, for example "http://otel-collector:4318"',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL');
  }
  const options: TokenizerTelemetryOptions = { endpoint };
  const protocol = env.OTEL_EXPORTER_OTLP_PROTOCOL?.trim();
  if (protocol) {
    if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
      throw new ConfigError(
        `OTEL_EXPORTER_OTLP_PROTOCOL: ${JSON.stringify(protocol)} is not supported; use "http/protobuf" or "http/json" (OTLP over HTTP, port 4318)`,
      );
    }
    options.protocol = protocol;
  }
  const serviceName = env.OTEL_SERVICE_NAME?.trim();
  if (serviceName) options.serviceName = serviceName;
  const interval = env.OTEL_METRIC_EXPORT_INTERVAL?.trim();
  if (interval) {
    if (!/^\d+$/.test(interval) || Number(interval) < 1) {
      throw new ConfigError('OTEL_METRIC_EXPORT_INTERVAL: must be a positive number of milliseconds');
    }
    options.metricExportIntervalMs = Number(interval);
  }
  const headers = env.OTEL_EXPORTER_OTLP_HEADERS?.trim();
  if (headers) options.headers = parseOtlpHeaders(headers);
  return options;
}

/** `key1=value1,key2=value2`, values URL-encoded (the OTLP exporter specification). */
function parseOtlpHeaders(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const equals = pair.indexOf('=');
    if (equals <= 0) {
      throw new ConfigError(
        'OTEL_EXPORTER_OTLP_HEADERS: write comma-separated name=value pairs (values URL-encoded)',
      );
    }
    headers[decodeURIComponent(pair.slice(0, equals).trim())] = decodeURIComponent(
      pair.slice(equals + 1).trim(),
    );
  }
  return headers;
}
