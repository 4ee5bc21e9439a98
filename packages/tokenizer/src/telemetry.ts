import type { AuditEntry } from './audit-log.js';
import { ConfigError } from './errors.js';
import type { OutgoingHeaders } from './outgoing-request.js';
import type { TraceSampling } from './trace-context.js';

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
  /**
   * Which requests get a span (OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG). Default: a request
   * carrying W3C trace context follows its caller's sampled flag, one in ten of the others is
   * traced (`parentbased_traceidratio`, 0.1).
   */
  sampling?: TraceSampling;
  /** How often queued spans are exported (OTEL_BSP_SCHEDULE_DELAY). Default 1 s. */
  spanExportDelayMs?: number;
  /** Spans waiting for export; past it new spans are dropped (OTEL_BSP_MAX_QUEUE_SIZE). Default 4096. */
  spanQueueSize?: number;
  /** Spans per export request (OTEL_BSP_MAX_EXPORT_BATCH_SIZE). Default 512. */
  spanBatchSize?: number;
  /** Longest wait for one span export (OTEL_BSP_EXPORT_TIMEOUT). Default 10 s. */
  spanExportTimeoutMs?: number;
  /** Extra headers on every export request (OTEL_EXPORTER_OTLP_HEADERS). */
  headers?: Readonly<Record<string, string>>;
}

/** What the proxy knows besides the options. */
export interface TelemetryContext {
  /** Credential names by fingerprint, from the allow-list (`sha256:<digest> <name>` lines). */
  credentialNames: ReadonlyMap<string, string>;
}

/** What the request handler calls; implemented in telemetry-sdk.ts. */
export interface RequestTelemetry {
  /**
   * Decides whether the request is traced. If it is, starts its span (a child of the caller's
   * W3C trace context when the headers carry one) and writes the span's `traceparent` into the
   * headers, so the upstream sees the same trace; returns the span. If not, returns undefined
   * and leaves the headers alone.
   */
  startRequest(headers: OutgoingHeaders, method: string): unknown;
  /** Records the request's metrics and ends its span, if any, with the audit entry's outcome. */
  endRequest(span: unknown, entry: AuditEntry, durationSeconds: number): void;
  /** A request refused before it could be parsed: metrics only. */
  recordMalformed(status: number): void;
  /** Exports the spans queued so far (metrics keep their interval). */
  flushSpans(): Promise<void>;
  /** Requests in flight, read when metrics are collected. */
  observeInFlight(read: () => number): void;
  /** Exports what is queued and stops. */
  shutdown(): Promise<void>;
}

/** Loads the OpenTelemetry SDK and builds the exporters. */
export async function loadTelemetry(
  options: TokenizerTelemetryOptions,
  context: TelemetryContext = { credentialNames: new Map() },
): Promise<RequestTelemetry> {
  const { createRequestTelemetry } = await import('./telemetry-sdk.js');
  return createRequestTelemetry(options, context);
}

type Environment = Readonly<Record<string, string | undefined>>;

/**
 * The standard OpenTelemetry variables: OTEL_EXPORTER_OTLP_ENDPOINT (telemetry is off without
 * it), OTEL_EXPORTER_OTLP_PROTOCOL (`http/protobuf` or `http/json`), OTEL_SERVICE_NAME,
 * OTEL_EXPORTER_OTLP_HEADERS, OTEL_METRIC_EXPORT_INTERVAL, OTEL_TRACES_SAMPLER and
 * OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_*; OTEL_SDK_DISABLED=true turns it off.
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
  const interval = positiveInteger(env, 'OTEL_METRIC_EXPORT_INTERVAL', 'milliseconds');
  if (interval !== undefined) options.metricExportIntervalMs = interval;
  const sampling = samplingFromEnv(env);
  if (sampling !== undefined) options.sampling = sampling;
  const exportDelay = positiveInteger(env, 'OTEL_BSP_SCHEDULE_DELAY', 'milliseconds');
  if (exportDelay !== undefined) options.spanExportDelayMs = exportDelay;
  const queueSize = positiveInteger(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 'spans');
  if (queueSize !== undefined) options.spanQueueSize = queueSize;
  const batchSize = positiveInteger(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'spans');
  if (batchSize !== undefined) options.spanBatchSize = batchSize;
  const exportTimeout = positiveInteger(env, 'OTEL_BSP_EXPORT_TIMEOUT', 'milliseconds');
  if (exportTimeout !== undefined) options.spanExportTimeoutMs = exportTimeout;
  const headers = env.OTEL_EXPORTER_OTLP_HEADERS?.trim();
  if (headers) options.headers = parseOtlpHeaders(headers);
  return options;
}

function positiveInteger(env: Environment, name: string, unit: string): number | undefined {
  const text = env[name]?.trim();
  if (!text) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw new ConfigError(`${name}: must be a positive number of ${unit}`);
  return Number(text);
}

const SAMPLERS: Readonly<Record<string, { followParent: boolean; ratio?: number }>> = {
  always_on: { followParent: false, ratio: 1 },
  always_off: { followParent: false, ratio: 0 },
  traceidratio: { followParent: false },
  parentbased_always_on: { followParent: true, ratio: 1 },
  parentbased_always_off: { followParent: true, ratio: 0 },
  parentbased_traceidratio: { followParent: true },
};

/**
 * OTEL_TRACES_SAMPLER and its argument, as the specification defines them, except the default:
 * `parentbased_traceidratio` with 0.1 rather than every request (a span costs the proxy CPU; see
 * the README). Unknown samplers and bad ratios are refused rather than replaced.
 */
function samplingFromEnv(env: Environment): TraceSampling | undefined {
  const name = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase();
  const argument = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  if (!name && !argument) return undefined;
  const sampler = SAMPLERS[name || 'parentbased_traceidratio'];
  if (sampler === undefined) {
    throw new ConfigError(
      `OTEL_TRACES_SAMPLER: ${JSON.stringify(env.OTEL_TRACES_SAMPLER)} is not supported; use one of ${Object.keys(SAMPLERS).join(', ')}`,
    );
  }
  if (sampler.ratio !== undefined) return { followParent: sampler.followParent, ratio: sampler.ratio };
  // The specification's default argument of a ratio sampler.
  if (!argument) return { followParent: sampler.followParent, ratio: 1 };
  const ratio = Number(argument);
  if (!/^\d*\.?\d+(e-?\d+)?$/i.test(argument) || !(ratio >= 0 && ratio <= 1)) {
    throw new ConfigError(
      `OTEL_TRACES_SAMPLER_ARG: ${JSON.stringify(argument)} is not a ratio; write a number from 0 to 1, for example 0.1 for one request in ten`,
    );
  }
  return { followParent: sampler.followParent, ratio };
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
