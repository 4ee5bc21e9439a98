import { randomUUID } from 'node:crypto';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtobufMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { AuditEntry } from './audit-log.js';
import type { OutgoingHeaders } from './outgoing-request.js';
import { type RequestSpan, RequestTracer } from './request-span.js';
import type { RequestTelemetry, TelemetryContext, TokenizerTelemetryOptions } from './telemetry.js';
import { RequestMetrics } from './telemetry-metrics.js';
import { DEFAULT_TRACE_SAMPLING } from './trace-context.js';
import { VERSION } from './version.js';

// Loaded only when telemetry is configured (telemetry.ts imports this file dynamically).
// No Tracer and no OpenTelemetry context on the request path: which requests are traced is
// decided in trace-context.ts, a traced request's span is a plain RequestSpan handed to the SDK's
// BatchSpanProcessor when it ends (request-span.ts), and metrics are counted in
// telemetry-metrics.ts. The SDK batches, encodes and exports as usual.

/** Span batching defaults: bounded, so a slow collector costs dropped spans, never memory. */
export const SPAN_BATCHING_DEFAULTS = Object.freeze({
  queueSize: 4096,
  batchSize: 512,
  exportDelayMs: 1000,
  exportTimeoutMs: 10_000,
});

const SCOPE = Object.freeze({ name: '@keyward/tokenizer', version: VERSION });

class SdkRequestTelemetry implements RequestTelemetry {
  private readonly spanProcessor: BatchSpanProcessor;
  private readonly meterProvider: MeterProvider;
  private readonly tracer: RequestTracer;
  private readonly metrics: RequestMetrics;

  constructor(options: TokenizerTelemetryOptions, context: TelemetryContext) {
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
    // One export at a time, the queue bounded: past it spans are dropped, never blocking a request.
    this.spanProcessor = new BatchSpanProcessor(spanExporter, {
      maxQueueSize: queueSize,
      maxExportBatchSize: Math.min(options.spanBatchSize ?? SPAN_BATCHING_DEFAULTS.batchSize, queueSize),
      scheduledDelayMillis: options.spanExportDelayMs ?? SPAN_BATCHING_DEFAULTS.exportDelayMs,
      exportTimeoutMillis: options.spanExportTimeoutMs ?? SPAN_BATCHING_DEFAULTS.exportTimeoutMs,
    });
    this.tracer = new RequestTracer(options.sampling ?? DEFAULT_TRACE_SAMPLING, this.spanProcessor, {
      resource,
      scope: SCOPE,
      credentialNames: context.credentialNames,
    });
    this.metrics = new RequestMetrics(SCOPE);
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

  startRequest(headers: OutgoingHeaders, method: string): RequestSpan | undefined {
    return this.tracer.start(headers, method);
  }

  endRequest(span: unknown, entry: AuditEntry, durationSeconds: number): void {
    this.metrics.record(entry.decision, entry.status, entry.error, durationSeconds);
    if (span !== undefined) this.tracer.end(span as RequestSpan, entry);
  }

  recordMalformed(status: number): void {
    this.metrics.record('denied', status, 'MALFORMED_REQUEST', 0);
  }

  flushSpans(): Promise<void> {
    return this.spanProcessor.forceFlush();
  }

  async shutdown(): Promise<void> {
    await Promise.allSettled([this.spanProcessor.shutdown(), this.meterProvider.shutdown()]);
  }
}

export function createRequestTelemetry(
  options: TokenizerTelemetryOptions,
  context: TelemetryContext,
): RequestTelemetry {
  return new SdkRequestTelemetry(options, context);
}
