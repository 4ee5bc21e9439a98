import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { hrTimeToNanoseconds } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '../src/audit-log.js';
import type { OutgoingHeaders } from '../src/outgoing-request.js';
import { type RequestSpan, type RequestSpanSettings, RequestTracer } from '../src/request-span.js';
import type { TraceSampling } from '../src/trace-context.js';

// The span builder alone: which requests get a span, what the upstream's headers become, and the
// ReadableSpan the SDK's processor receives. telemetry.integration.test.ts checks the exported bytes.

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN_ID = '00f067aa0ba902b7';
const FINGERPRINT = '0123456789abcdef';
const OTHER_FINGERPRINT = 'fedcba9876543210';

const settings: RequestSpanSettings = {
  resource: resourceFromAttributes({ 'service.name': 'test-tokenizer' }),
  scope: { name: '@keyward/tokenizer', version: '9.9.9' },
  credentialNames: new Map([[FINGERPRINT, 'stripe live']]),
};

function tracerWith(sampling: TraceSampling, random?: () => number) {
  const ended: ReadableSpan[] = [];
  const tracer = new RequestTracer(sampling, { onEnd: (span) => ended.push(span) }, settings, random);
  return { tracer, ended };
}

const entryOf = (overrides: Partial<AuditEntry> = {}): AuditEntry => ({
  time: '',
  credentials: [FINGERPRINT],
  method: 'POST',
  host: 'api.stripe.com:8443',
  path: '/v1/charges',
  status: 200,
  durationMs: 0,
  decision: 'forwarded',
  ...overrides,
});

const headersOf = (values: Record<string, string | string[]> = {}): OutgoingHeaders =>
  Object.assign(Object.create(null) as OutgoingHeaders, { host: 'api.stripe.com:8443' }, values);

const everyRequest: TraceSampling = { followParent: true, ratio: 1 };
const noRequestWithoutParent: TraceSampling = { followParent: true, ratio: 0 };

describe('RequestTracer', () => {
  it("joins the caller's trace: same trace id, the caller's span as remote parent, tracestate kept", () => {
    const { tracer, ended } = tracerWith(noRequestWithoutParent);
    const headers = headersOf({
      traceparent: `00-${TRACE_ID}-${CALLER_SPAN_ID}-01`,
      tracestate: 'agent=t61rcWkgMzE,other=1',
    });
    const span = tracer.start(headers, 'POST') as RequestSpan;
    expect(span).toBeDefined();
    const context = span.spanContext();
    expect(context.traceId).toBe(TRACE_ID);
    expect(context.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(context.spanId).not.toBe(CALLER_SPAN_ID);
    expect(context.traceFlags).toBe(TraceFlags.SAMPLED);
    expect(context.isRemote).toBeFalsy();
    expect(context.traceState?.serialize()).toBe('agent=t61rcWkgMzE,other=1');
    expect(span.parentSpanContext).toEqual({
      traceId: TRACE_ID,
      spanId: CALLER_SPAN_ID,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    // The upstream's parent is the proxy's span; the caller's tracestate goes on as it came.
    expect(headers.traceparent).toBe(`00-${TRACE_ID}-${context.spanId}-01`);
    expect(headers.tracestate).toBe('agent=t61rcWkgMzE,other=1');
    // Nothing reaches the processor before the request ends.
    expect(ended).toEqual([]);
    tracer.end(span, entryOf());
    expect(ended).toEqual([span]);
  });

  it('gives a request without a parent a new trace, and the upstream its context', () => {
    const { tracer, ended } = tracerWith(everyRequest);
    const headers = headersOf({ tracestate: 'ignored=without-traceparent' });
    const span = tracer.start(headers, 'GET') as RequestSpan;
    const { traceId, spanId } = span.spanContext();
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceId).not.toBe('0'.repeat(32));
    expect(spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(span.parentSpanContext).toBeUndefined();
    expect(span.spanContext().traceState).toBeUndefined();
    expect(headers.traceparent).toBe(`00-${traceId}-${spanId}-01`);
    tracer.end(span, entryOf());
    expect(ended).toHaveLength(1);
    // Every span and trace id is new.
    const ids = new Set<string>();
    for (let index = 0; index < 1000; index++) {
      const next = tracer.start(headersOf(), 'GET') as RequestSpan;
      ids.add(next.traceId);
      ids.add(next.spanId);
    }
    expect(ids.size).toBe(2000);
  });

  it("starts no span when the caller's sampled flag is off, and leaves its headers as they came", () => {
    // Parent-based: the ratio is not consulted for a request with a parent.
    const { tracer, ended } = tracerWith(everyRequest, () => {
      throw new Error('no random number is drawn for a request with a parent');
    });
    const traceparent = `00-${TRACE_ID}-${CALLER_SPAN_ID}-00`;
    const headers = headersOf({ traceparent, tracestate: 'agent=off' });
    expect(tracer.start(headers, 'GET')).toBeUndefined();
    expect(headers.traceparent).toBe(traceparent);
    expect(headers.tracestate).toBe('agent=off');
    expect(ended).toEqual([]);
  });

  it('starts no span for a request the ratio leaves out, and adds no traceparent', () => {
    const { tracer } = tracerWith({ followParent: true, ratio: 0.1 }, () => 0.5);
    const headers = headersOf();
    expect(tracer.start(headers, 'GET')).toBeUndefined();
    expect(headers.traceparent).toBeUndefined();
    const sampled = tracerWith({ followParent: true, ratio: 0.1 }, () => 0.05);
    expect(sampled.tracer.start(headersOf(), 'GET')).toBeDefined();
  });

  it("records the request's outcome as attributes: upstream, path, status, decision, credentials by fingerprint and name", () => {
    const { tracer, ended } = tracerWith(everyRequest);
    const span = tracer.start(headersOf(), 'POST') as RequestSpan;
    tracer.end(span, entryOf({ credentials: [FINGERPRINT, OTHER_FINGERPRINT] }));
    const exported = ended[0] as ReadableSpan;
    expect(exported.name).toBe('tokenizer POST');
    expect(exported.kind).toBe(SpanKind.SERVER);
    expect(exported.attributes).toEqual({
      'http.request.method': 'POST',
      'server.address': 'api.stripe.com',
      'server.port': 8443,
      'url.path': '/v1/charges',
      'http.response.status_code': 200,
      'keyward.tokenizer.decision': 'forwarded',
      'keyward.tokenizer.credential.fingerprints': [FINGERPRINT, OTHER_FINGERPRINT],
      // The allow-list names one of them; the other is "".
      'keyward.tokenizer.credential.names': ['stripe live', ''],
    });
    expect(exported.status).toEqual({ code: SpanStatusCode.UNSET });
    expect(exported.resource).toBe(settings.resource);
    expect(exported.instrumentationScope).toBe(settings.scope);
    expect(exported.ended).toBe(true);
    expect(exported.events).toEqual([]);
    expect(exported.links).toEqual([]);
    expect(exported.droppedAttributesCount).toBe(0);
    const start = hrTimeToNanoseconds(exported.startTime);
    const end = hrTimeToNanoseconds(exported.endTime);
    expect(end).toBeGreaterThanOrEqual(start);
    // Epoch nanoseconds exceed a double's integers: equal to within a microsecond.
    expect(Math.abs(hrTimeToNanoseconds(exported.duration) - (end - start))).toBeLessThan(1000);
    // Wall-clock time, as the SDK's own spans carry.
    expect(Math.abs(start / 1e6 - Date.now())).toBeLessThan(60_000);
  });

  it('leaves out names when the allow-list names none of the credentials, and absent parts of the request', () => {
    const { tracer, ended } = tracerWith(everyRequest);
    const span = tracer.start(headersOf(), 'CONNECT') as RequestSpan;
    tracer.end(
      span,
      entryOf({ credentials: [OTHER_FINGERPRINT], host: '', path: '', status: 400, decision: 'denied' }),
    );
    expect(ended[0]?.attributes).toEqual({
      'http.request.method': 'CONNECT',
      'http.response.status_code': 400,
      'keyward.tokenizer.decision': 'denied',
      'keyward.tokenizer.credential.fingerprints': [OTHER_FINGERPRINT],
    });
  });

  it('marks an error with status ERROR and its class; a refusal keeps status UNSET with its class', () => {
    const { tracer, ended } = tracerWith(everyRequest);
    const failed = tracer.start(headersOf(), 'GET') as RequestSpan;
    tracer.end(
      failed,
      entryOf({ status: 502, decision: 'error', error: 'UPSTREAM_FAILED', detail: 'connection refused' }),
    );
    const refused = tracer.start(headersOf(), 'GET') as RequestSpan;
    tracer.end(refused, entryOf({ status: 407, decision: 'denied', error: 'BAD_PROXY_AUTH' }));
    const [error, denial] = ended;
    expect(error?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'UPSTREAM_FAILED' });
    expect(error?.attributes['error.type']).toBe('UPSTREAM_FAILED');
    expect(error?.attributes['keyward.tokenizer.error.detail']).toBe('connection refused');
    expect(error?.attributes['http.response.status_code']).toBe(502);
    expect(error?.attributes['keyward.tokenizer.decision']).toBe('error');
    expect(denial?.status).toEqual({ code: SpanStatusCode.UNSET });
    expect(denial?.attributes['error.type']).toBe('BAD_PROXY_AUTH');
  });

  it("is accepted by the SDK's BatchSpanProcessor and reaches its exporter as it was built", async () => {
    const exporter = new InMemorySpanExporter();
    const processor = new BatchSpanProcessor(exporter, { scheduledDelayMillis: 60_000 });
    const tracer = new RequestTracer(noRequestWithoutParent, processor, settings);
    const headers = headersOf({ traceparent: `00-${TRACE_ID}-${CALLER_SPAN_ID}-01` });
    const span = tracer.start(headers, 'GET') as RequestSpan;
    tracer.end(span, entryOf());
    // Not sampled: no span, nothing for the processor.
    expect(
      tracer.start(headersOf({ traceparent: `00-${TRACE_ID}-${CALLER_SPAN_ID}-00` }), 'GET'),
    ).toBeUndefined();
    await processor.forceFlush();
    const [exported, ...rest] = exporter.getFinishedSpans();
    expect(rest).toEqual([]);
    expect(exported?.spanContext().traceId).toBe(TRACE_ID);
    expect(exported?.parentSpanContext?.spanId).toBe(CALLER_SPAN_ID);
    expect(exported?.attributes['keyward.tokenizer.credential.names']).toEqual(['stripe live']);
    await processor.shutdown();
  });
});
