import {
  type Attributes,
  type Histogram,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtobufMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { AuditEntry } from './audit-log.js';
import type { OutgoingHeaders } from './outgoing-request.js';
import { splitAuthority } from './request-target.js';
import type { RequestTelemetry, TokenizerTelemetryOptions } from './telemetry.js';
import { VERSION } from './version.js';

// Loaded only when telemetry is configured (telemetry.ts imports this file dynamically).

const headerGetter: TextMapGetter<OutgoingHeaders> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier),
};
const headerSetter: TextMapSetter<OutgoingHeaders> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** Attribute sets are built once per (decision, status, error) and reused, not per request. */
const MAX_ATTRIBUTE_SETS = 1024;
const NO_ATTRIBUTES: Attributes = Object.freeze({});

/** Requests with one outcome: counted here per request, reported when metrics are collected. */
interface OutcomeCount {
  attributes: Attributes;
  count: number;
}

class SdkRequestTelemetry implements RequestTelemetry {
  private readonly propagator = new W3CTraceContextPropagator();
  private readonly tracerProvider: BasicTracerProvider;
  private readonly meterProvider: MeterProvider;
  private readonly tracer;
  private readonly duration: Histogram;
  private readonly outcomes = new Map<string, OutcomeCount>();
  private readonly spanOptions = { kind: SpanKind.SERVER };

  constructor(options: TokenizerTelemetryOptions) {
    const base = options.endpoint.replace(/\/+$/, '');
    const json = options.protocol === 'http/json';
    const resource = resourceFromAttributes({
      'service.name': options.serviceName ?? 'keyward-tokenizer',
      'service.version': VERSION,
    });
    const exporterOptions = (path: string) => ({
      url: `${base}${path}`,
      ...(options.headers ? { headers: { ...options.headers } } : {}),
    });
    const spanExporter = json
      ? new JsonTraceExporter(exporterOptions('/v1/traces'))
      : new ProtobufTraceExporter(exporterOptions('/v1/traces'));
    this.tracerProvider = new BasicTracerProvider({
      resource,
      spanProcessors: [
        // Bounded: under overload spans are dropped rather than memory growing.
        new BatchSpanProcessor(spanExporter, {
          maxQueueSize: 16_384,
          maxExportBatchSize: 2048,
          scheduledDelayMillis: options.spanExportDelayMs ?? 1000,
        }),
      ],
    });
    this.tracer = this.tracerProvider.getTracer('@keyward/tokenizer', VERSION);
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
        }),
      ],
    });
    const meter = this.meterProvider.getMeter('@keyward/tokenizer', VERSION);
    // Counted in a plain map and observed at collection: the SDK's synchronous counter hashes
    // the attribute set on every call, a measurable share of a request's CPU.
    meter
      .createObservableCounter('keyward.tokenizer.requests', {
        description: 'Proxied requests by outcome.',
        unit: '{request}',
      })
      .addCallback((result) => {
        for (const outcome of this.outcomes.values()) result.observe(outcome.count, outcome.attributes);
      });
    this.duration = meter.createHistogram('keyward.tokenizer.request.duration', {
      description: 'Time from request to response end.',
      unit: 's',
      advice: {
        explicitBucketBoundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      },
    });
  }

  observeInFlight(read: () => number): void {
    this.meterProvider
      .getMeter('@keyward/tokenizer', VERSION)
      .createObservableUpDownCounter('keyward.tokenizer.requests.in_flight', {
        description: 'Requests currently being proxied.',
        unit: '{request}',
      })
      .addCallback((result) => result.observe(read()));
  }

  startRequest(headers: OutgoingHeaders, method: string): Span {
    const parent = this.propagator.extract(ROOT_CONTEXT, headers, headerGetter);
    const span = this.tracer.startSpan(`tokenizer ${method}`, this.spanOptions, parent);
    // The upstream's parent is this span; the caller's tracestate travels on unchanged.
    this.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, headerSetter);
    return span;
  }

  endRequest(spanValue: unknown, entry: AuditEntry, durationSeconds: number): void {
    const attributes = this.count(entry.decision, entry.status, entry.error);
    this.duration.record(durationSeconds, NO_ATTRIBUTES);
    const span = spanValue as Span | undefined;
    if (span === undefined) return;
    // Not sampled: nothing is exported, so nothing is worth setting.
    if (!span.isRecording()) {
      span.end();
      return;
    }
    span.setAttributes(attributes);
    span.setAttribute('http.request.method', entry.method);
    if (entry.host !== '') {
      span.setAttribute('keyward.tokenizer.upstream', entry.host);
      const authority = splitAuthority(entry.host);
      if (authority !== undefined) {
        span.setAttribute('server.address', authority.hostname);
        if (authority.port !== undefined) span.setAttribute('server.port', authority.port);
      }
    }
    if (entry.path !== '') span.setAttribute('url.path', entry.path);
    // Fingerprints (a short SHA-256 of each sealed token), as in the audit log; never a value.
    if (entry.credentials.length > 0) {
      span.setAttribute('keyward.tokenizer.credential.fingerprints', entry.credentials);
    }
    if (entry.detail !== undefined) span.setAttribute('keyward.tokenizer.error.detail', entry.detail);
    span.setAttribute('keyward.tokenizer.duration_ms', durationSeconds * 1000);
    if (entry.decision === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: entry.error });
    span.end();
  }

  recordMalformed(status: number): void {
    this.count('denied', status, 'MALFORMED_REQUEST');
    this.duration.record(0, NO_ATTRIBUTES);
  }

  async shutdown(): Promise<void> {
    await Promise.allSettled([this.tracerProvider.shutdown(), this.meterProvider.shutdown()]);
  }

  /** Counts one request with this outcome; returns the outcome's attributes. */
  private count(decision: string, status: number, error: string | undefined): Attributes {
    const key = `${decision}${status}${error ?? ''}`;
    let outcome = this.outcomes.get(key);
    if (outcome === undefined) {
      const attributes: Attributes = {
        'keyward.tokenizer.decision': decision,
        'http.response.status_code': status,
        ...(error === undefined ? {} : { 'error.type': error }),
      };
      // Error codes are the proxy's own, so the set stays small; past the bound, outcomes go uncounted.
      if (this.outcomes.size >= MAX_ATTRIBUTE_SETS) return attributes;
      outcome = { attributes, count: 0 };
      this.outcomes.set(key, outcome);
    }
    outcome.count++;
    return outcome.attributes;
  }
}

export function createRequestTelemetry(options: TokenizerTelemetryOptions): RequestTelemetry {
  return new SdkRequestTelemetry(options);
}
