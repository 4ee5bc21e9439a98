import { randomFillSync } from 'node:crypto';
import {
  type Attributes,
  type HrTime,
  type Link,
  type SpanContext,
  SpanKind,
  type SpanStatus,
  SpanStatusCode,
  TraceFlags,
  type TraceState,
} from '@opentelemetry/api';
import {
  addHrTimes,
  hrTimeDuration,
  type InstrumentationScope,
  millisToHrTime,
  TraceState as W3cTraceState,
} from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { AuditEntry } from './audit-log.js';
import type { OutgoingHeaders } from './outgoing-request.js';
import { splitAuthority } from './request-target.js';
import { decideTracing, formatTraceparent, parseTraceparent, type TraceSampling } from './trace-context.js';

// A request's span without the SDK's Tracer: no Span object, no OpenTelemetry context and no
// attribute calls on the request path. A traced request gets one RequestSpan holding plain
// strings and numbers; at its end the span is handed to the SDK's span processor (a
// BatchSpanProcessor in the proxy), whose OTLP exporter reads it as any ReadableSpan. What the
// exporter reads and the request does not need (attributes, times as HrTime, status, parent
// context) is built when the exporter reads it. Loaded only with the SDK (telemetry-sdk.ts).

/** What every span of one proxy shares. */
export interface RequestSpanSettings {
  /** One object for all spans: the OTLP exporters group spans by resource and scope identity. */
  resource: Resource;
  scope: InstrumentationScope;
  /** Credential names by fingerprint, from the allow-list. */
  credentialNames: ReadonlyMap<string, string>;
}

const UNSET_STATUS: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });
const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[];
const NO_EVENTS: TimedEvent[] = Object.freeze([]) as unknown as TimedEvent[];
const ALL_ZERO_TRACE_ID = '00000000000000000000000000000000';
const ALL_ZERO_SPAN_ID = '0000000000000000';

/**
 * One traced request: a ReadableSpan for the SDK's processors and exporters, and its own
 * SpanContext (`spanContext()` returns the span itself, so reading it allocates nothing).
 * Filled in two steps, `start` (ids, parent, start time) and `end` (the request's outcome, copied
 * from its audit entry); it is handed to the processor only after `end`.
 */
export class RequestSpan implements ReadableSpan, SpanContext {
  /** Set by `end`: performance.now() milliseconds, as `startMs`. */
  endMs = 0;
  host = '';
  path = '';
  /** The HTTP status answered (`status` is the span's). */
  responseStatus = 0;
  decision: AuditEntry['decision'] = 'denied';
  error: string | undefined = undefined;
  detail: string | undefined = undefined;
  credentials: readonly string[] = [];
  // Built when the exporter first reads them (the protobuf encoder reads every field twice).
  private builtAttributes: Attributes | undefined = undefined;
  private builtStartTime: HrTime | undefined = undefined;
  private builtEndTime: HrTime | undefined = undefined;
  private builtParentSpanContext: SpanContext | undefined = undefined;

  constructor(
    private readonly settings: RequestSpanSettings,
    readonly name: string,
    readonly method: string,
    readonly traceId: string,
    readonly spanId: string,
    /** The caller's span, when the request carried a valid `traceparent`. */
    readonly parentSpanId: string | undefined,
    readonly parentSampled: boolean,
    /** The caller's `tracestate` header, kept as text until the exporter reads it. */
    readonly traceStateHeader: string | undefined,
    /** performance.now() milliseconds. */
    readonly startMs: number,
  ) {}

  // SpanContext (the span's own).
  get traceFlags(): number {
    // Only sampled requests get a RequestSpan.
    return TraceFlags.SAMPLED;
  }

  get traceState(): TraceState | undefined {
    return this.traceStateHeader === undefined ? undefined : new W3cTraceState(this.traceStateHeader);
  }

  // ReadableSpan.
  spanContext(): SpanContext {
    return this;
  }

  get kind(): SpanKind {
    return SpanKind.SERVER;
  }

  get parentSpanContext(): SpanContext | undefined {
    if (this.parentSpanId === undefined) return undefined;
    this.builtParentSpanContext ??= {
      traceId: this.traceId,
      spanId: this.parentSpanId,
      traceFlags: this.parentSampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
      isRemote: true,
    };
    return this.builtParentSpanContext;
  }

  get startTime(): HrTime {
    this.builtStartTime ??= epochTime(this.startMs);
    return this.builtStartTime;
  }

  get endTime(): HrTime {
    this.builtEndTime ??= epochTime(this.endMs);
    return this.builtEndTime;
  }

  get duration(): HrTime {
    return hrTimeDuration(this.startTime, this.endTime);
  }

  get ended(): boolean {
    return this.endMs !== 0;
  }

  get status(): SpanStatus {
    return this.decision === 'error' ? { code: SpanStatusCode.ERROR, message: this.error } : UNSET_STATUS;
  }

  get links(): Link[] {
    return NO_LINKS;
  }

  get events(): TimedEvent[] {
    return NO_EVENTS;
  }

  get droppedAttributesCount(): number {
    return 0;
  }

  get droppedEventsCount(): number {
    return 0;
  }

  get droppedLinksCount(): number {
    return 0;
  }

  get resource(): Resource {
    return this.settings.resource;
  }

  get instrumentationScope(): InstrumentationScope {
    return this.settings.scope;
  }

  get attributes(): Attributes {
    this.builtAttributes ??= this.buildAttributes();
    return this.builtAttributes;
  }

  private buildAttributes(): Attributes {
    const attributes: Attributes = { 'http.request.method': this.method };
    if (this.host !== '') {
      const authority = splitAuthority(this.host);
      if (authority !== undefined) {
        attributes['server.address'] = authority.hostname;
        if (authority.port !== undefined) attributes['server.port'] = authority.port;
      }
    }
    if (this.path !== '') attributes['url.path'] = this.path;
    attributes['http.response.status_code'] = this.responseStatus;
    attributes['keyward.tokenizer.decision'] = this.decision;
    if (this.error !== undefined) attributes['error.type'] = this.error;
    if (this.detail !== undefined) attributes['keyward.tokenizer.error.detail'] = this.detail;
    // Fingerprints (a short SHA-256 of each sealed token) and the names the operator gave them on
    // the allow-list; never a value.
    const fingerprints = this.credentials;
    if (fingerprints.length > 0) {
      attributes['keyward.tokenizer.credential.fingerprints'] = [...fingerprints];
      const names = this.settings.credentialNames;
      if (names.size > 0) {
        const named = fingerprints.map((fingerprint) => names.get(fingerprint) ?? '');
        if (named.some((name) => name !== '')) attributes['keyward.tokenizer.credential.names'] = named;
      }
    }
    return attributes;
  }
}

/** The time origin as HrTime, read once (hrTime() reads it on every call). */
let timeOrigin: HrTime | undefined;

/** performance.now() milliseconds as wall-clock HrTime, the SDK's own clock for spans. */
function epochTime(performanceMs: number): HrTime {
  timeOrigin ??= millisToHrTime(performance.timeOrigin);
  return addHrTimes(timeOrigin, millisToHrTime(performanceMs));
}

/** The part of a span processor the tracer uses: BatchSpanProcessor in the proxy. */
export type EndedSpanProcessor = Pick<SpanProcessor, 'onEnd'>;

/**
 * Decides which requests are traced (trace-context.ts), starts their RequestSpan, and hands it to
 * the processor when the request ends. A request that is not traced costs a header lookup and at
 * most one random number.
 */
export class RequestTracer {
  /** `tokenizer GET`, … built once per method. */
  private readonly spanNames = new Map<string, string>();

  constructor(
    private readonly sampling: TraceSampling,
    private readonly processor: EndedSpanProcessor,
    private readonly settings: RequestSpanSettings,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * The request's span, or undefined when it is not traced. A traced request's headers get the
   * span's `traceparent` (the upstream's parent is the proxy's span); the caller's `tracestate`
   * travels on unchanged. Untraced requests' headers are left as they came.
   */
  start(headers: OutgoingHeaders, method: string): RequestSpan | undefined {
    const traceparent = headers.traceparent;
    const parent = traceparent === undefined ? undefined : parseTraceparent(traceparent);
    if (!decideTracing(this.sampling, parent, this.random)) return undefined;
    const traceId = parent === undefined ? randomId(16, ALL_ZERO_TRACE_ID) : parent.traceId;
    const spanId = randomId(8, ALL_ZERO_SPAN_ID);
    const traceState = headers.tracestate;
    const span = new RequestSpan(
      this.settings,
      this.spanName(method),
      method,
      traceId,
      spanId,
      parent?.spanId,
      parent?.sampled === true,
      parent === undefined || traceState === undefined
        ? undefined
        : typeof traceState === 'string'
          ? traceState
          : traceState.join(','),
      performance.now(),
    );
    headers.traceparent = formatTraceparent(traceId, spanId);
    return span;
  }

  /**
   * Copies the request's outcome into the span and hands it to the processor. The audit entry is
   * read here, not kept.
   */
  end(span: RequestSpan, entry: AuditEntry): void {
    span.endMs = performance.now();
    span.host = entry.host;
    span.path = entry.path;
    span.responseStatus = entry.status;
    span.decision = entry.decision;
    span.error = entry.error;
    span.detail = entry.detail;
    span.credentials = entry.credentials;
    this.processor.onEnd(span);
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

// Ids from the system's random source, drawn in blocks: one randomFillSync per 256 spans.
const ID_POOL = Buffer.allocUnsafe(4096);
let idPoolOffset = ID_POOL.length;

/** `bytes` random bytes as lowercase hex, never the all-zero id Trace Context calls invalid. */
function randomId(bytes: number, allZero: string): string {
  for (;;) {
    if (idPoolOffset + bytes > ID_POOL.length) {
      randomFillSync(ID_POOL);
      idPoolOffset = 0;
    }
    const id = ID_POOL.toString('hex', idPoolOffset, idPoolOffset + bytes);
    idPoolOffset += bytes;
    if (id !== allZero) return id;
  }
}
