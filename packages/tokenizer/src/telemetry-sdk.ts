import { randomUUID } from 'node:crypto';
import {
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtobufMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { AuditEntry } from './audit-log.js';
import type { OutgoingHeaders } from './outgoing-request.js';
import { splitAuthority } from './request-target.js';
import type { RequestTelemetry, TelemetryContext, TokenizerTelemetryOptions } from './telemetry.js';
import { RequestMetrics } from './telemetry-metrics.js';
import {
  DEFAULT_TRACE_SAMPLING,
  decideTracing,
  formatTraceparent,
  parseTraceparent,
  type TraceParent,
  type TraceSampling,
} from './trace-context.js';
import { VERSION } from './version.js';

// Loaded only when telemetry is configured (telemetry.ts imports this file dynamically).
// A request that is not traced never reaches the OpenTelemetry API: the decision is ours
// (trace-context.ts), and its metrics are counted in telemetry-metrics.ts.

/** Span batching defaults: bounded, so a slow collector costs dropped spans, never memory. */
export const SPAN_BATCHING_DEFAULTS = Object.freeze({
  queueSize: 4096,
  batchSize: 512,
  exportDelayMs: 1000,
  exportTimeoutMs: 10_000,
});

const SERVER_SPAN: SpanOptions = Object.freeze({ kind: SpanKind.SERVER });

class SdkRequestTelemetry implements RequestTelemetry {
  private readonly tracerProvider: BasicTracerProvider;
  private readonly meterProvider: MeterProvider;
  private readonly tracer: Tracer;
  private readonly metrics: RequestMetrics;
  private readonly sampling: TraceSampling;
  private readonly credentialNames: ReadonlyMap<string, string>;
  /** `tokenizer GET`, … built once per method. */
  private readonly spanNames = new Map<string, string>();

  constructor(options: TokenizerTelemetryOptions, context: TelemetryContext) {
    this.sampling = options.sampling ?? DEFAULT_TRACE_SAMPLING;
    this.credentialNames = context.credentialNames;
    const base = options.endpoint.replace(/\/+$/, '');
    const json = options.protocol === 'http/json';
    const resource = resourceFromAttributes({
      'service.name': options.serviceName ?? 'keyward-tokenizer',
      'service.version': VERSION,
      // Cluster workers export separately: each is its own instance, or their series would collide.
      'service.instance.id': randomUUID(),
    });
    const exporterOptions = (path: string) => ({
      url: `${base}${path}`,
      ...(options.headers ? { headers: { ...options.headers } } : {}),
    });
    const spanExporter = json
      ? new JsonTraceExporter(exporterOptions('/v1/traces'))
      : new ProtobufTraceExporter(exporterOptions('/v1/traces'));
    const queueSize = options.spanQueueSize ?? SPAN_BATCHING_DEFAULTS.queueSize;
    this.tracerProvider = new BasicTracerProvider({
      resource,
      // Which requests get a span is decided before the span is started.
      sampler: new AlwaysOnSampler(),
      spanProcessors: [
        // One export at a time, the queue bounded: past it spans are dropped, never blocking a request.
        new BatchSpanProcessor(spanExporter, {
          maxQueueSize: queueSize,
          maxExportBatchSize: Math.min(options.spanBatchSize ?? SPAN_BATCHING_DEFAULTS.batchSize, queueSize),
          scheduledDelayMillis: options.spanExportDelayMs ?? SPAN_BATCHING_DEFAULTS.exportDelayMs,
          exportTimeoutMillis: options.spanExportTimeoutMs ?? SPAN_BATCHING_DEFAULTS.exportTimeoutMs,
        }),
      ],
    });
    this.tracer = this.tracerProvider.getTracer('@keyward/tokenizer', VERSION);
    this.metrics = new RequestMetrics({ name: '@keyward/tokenizer', version: VERSION });
    const metricExporter = json
      ? new JsonMetricExporter(exporterOptions('/v1/metrics'))
      : new ProtobufMetricExporter(exporterOptions('/v1/metrics'));
    const interval = options.metricExportIntervalMs ?? 60_000;
    this.meterProvider = new MeterProvider({
      resource,
      readers: [
        new PeriodicExportingMetricReader({
          exporter: metricExporter,
          exportIntervalMillis: interval,
          exportTimeoutMillis: Math.min(interval, 30_000),
          metricProducers: [this.metrics],
        }),
      ],
    });
  }

  observeInFlight(read: () => number): void {
    this.metrics.observeInFlight(read);
  }

  startRequest(headers: OutgoingHeaders, method: string): Span | undefined {
    const traceparent = headers.traceparent;
    const parent = traceparent === undefined ? undefined : parseTraceparent(traceparent);
    // Not traced: the caller's headers go upstream as they came, and nothing else happens.
    if (!decideTracing(this.sampling, parent)) return undefined;
    const span = this.tracer.startSpan(
      this.spanName(method),
      SERVER_SPAN,
      parent === undefined
        ? ROOT_CONTEXT
        : trace.setSpanContext(ROOT_CONTEXT, this.remoteContext(parent, headers)),
    );
    const context = span.spanContext();
    // The upstream's parent is this span; the caller's tracestate travels on unchanged.
    headers.traceparent = formatTraceparent(context.traceId, context.spanId);
    return span;
  }

  endRequest(spanValue: unknown, entry: AuditEntry, durationSeconds: number): void {
    this.metrics.record(entry.decision, entry.status, entry.error, durationSeconds);
    if (spanValue !== undefined) this.endSpan(spanValue as Span, entry);
  }

  recordMalformed(status: number): void {
    this.metrics.record('denied', status, 'MALFORMED_REQUEST', 0);
  }

  async shutdown(): Promise<void> {
    await Promise.allSettled([this.tracerProvider.shutdown(), this.meterProvider.shutdown()]);
  }

  private endSpan(span: Span, entry: AuditEntry): void {
    span.setAttribute('http.request.method', entry.method);
    if (entry.host !== '') {
      const authority = splitAuthority(entry.host);
      if (authority !== undefined) {
        span.setAttribute('server.address', authority.hostname);
        if (authority.port !== undefined) span.setAttribute('server.port', authority.port);
      }
    }
    if (entry.path !== '') span.setAttribute('url.path', entry.path);
    span.setAttribute('http.response.status_code', entry.status);
    span.setAttribute('keyward.tokenizer.decision', entry.decision);
    if (entry.error !== undefined) span.setAttribute('error.type', entry.error);
    if (entry.detail !== undefined) span.setAttribute('keyward.tokenizer.error.detail', entry.detail);
    // Fingerprints (a short SHA-256 of each sealed token) and the names the operator gave them on
    // the allow-list; never a value.
    const fingerprints = entry.credentials;
    if (fingerprints.length > 0) {
      span.setAttribute('keyward.tokenizer.credential.fingerprints', fingerprints);
      if (this.credentialNames.size > 0) {
        const names = fingerprints.map((fingerprint) => this.credentialNames.get(fingerprint) ?? '');
        if (names.some((name) => name !== '')) span.setAttribute('keyward.tokenizer.credential.names', names);
      }
    }
    if (entry.decision === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: entry.error });
    span.end();
  }

  private remoteContext(parent: TraceParent, headers: OutgoingHeaders): SpanContext {
    const traceState = headers.tracestate;
    return {
      traceId: parent.traceId,
      spanId: parent.spanId,
      traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
      isRemote: true,
      ...(traceState === undefined
        ? {}
        : { traceState: new TraceState(Array.isArray(traceState) ? traceState.join(',') : traceState) }),
    };
  }

  private spanName(method: string): string {
    let name = this.spanNames.get(method);
    if (name === undefined) {
      name = `tokenizer ${method}`;
      // Methods are client-chosen tokens: bounded, so a client cannot grow the map.
      if (this.spanNames.size < 64) this.spanNames.set(method, name);
    }
    return name;
  }
}

export function createRequestTelemetry(
  options: TokenizerTelemetryOptions,
  context: TelemetryContext,
): RequestTelemetry {
  return new SdkRequestTelemetry(options, context);
}
