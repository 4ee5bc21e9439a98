// W3C Trace Context (https://www.w3.org/TR/trace-context/) and the decision which requests get a
// span, made here before anything of OpenTelemetry is touched: a request that is not traced costs
// a header lookup and, at most, one random number. No OpenTelemetry import (unit-tested alone).

/** The parts of a valid `traceparent` the proxy uses. */
export interface TraceParent {
  traceId: string;
  spanId: string;
  /** The caller's sampled flag (bit 0 of trace-flags). */
  sampled: boolean;
}

/** Which requests are traced (OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG). */
export interface TraceSampling {
  /**
   * `parentbased_*`: a request carrying a valid `traceparent` is traced exactly when the caller's
   * sampled flag is set; `ratio` applies to the others only.
   */
  followParent: boolean;
  /** Share of requests traced, 0 to 1 (1: `always_on`, 0: `always_off`). */
  ratio: number;
}

/** Without OTEL_TRACES_SAMPLER: the caller's decision, else one request in ten (see README). */
export const DEFAULT_TRACE_SAMPLING: TraceSampling = Object.freeze({ followParent: true, ratio: 0.1 });

// version "00"…"fe" (not "ff"), 32 and 16 lowercase hex digits, 2 hex digits of flags.
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}/;
const ALL_ZERO_TRACE_ID = '00000000000000000000000000000000';
const ALL_ZERO_SPAN_ID = '0000000000000000';

/**
 * The caller's context, or undefined when the header is absent, repeated or invalid (then the
 * request starts a trace of its own, as the specification says).
 */
export function parseTraceparent(header: string | readonly string[] | undefined): TraceParent | undefined {
  if (typeof header !== 'string' || header.length < 55 || !TRACEPARENT.test(header)) return undefined;
  const version = header.slice(0, 2);
  if (version === 'ff') return undefined;
  // Version 00 is exactly 55 characters; later versions may append fields after a dash.
  if (header.length > 55 && (version === '00' || header.charCodeAt(55) !== 0x2d)) return undefined;
  const traceId = header.slice(3, 35);
  const spanId = header.slice(36, 52);
  if (traceId === ALL_ZERO_TRACE_ID || spanId === ALL_ZERO_SPAN_ID) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(header.slice(53, 55), 16) & 1) === 1 };
}

/** The span's own `traceparent`, for the upstream (always sampled: only traced requests get one). */
export function formatTraceparent(traceId: string, spanId: string): string {
  return `00-${traceId}-${spanId}-01`;
}

/**
 * Whether a request whose `traceparent` header is `header` gets a span. `random` is only called
 * for requests without a usable parent decision.
 */
export function decideTracing(
  sampling: TraceSampling,
  parent: TraceParent | undefined,
  random: () => number = Math.random,
): boolean {
  if (parent !== undefined) {
    if (sampling.followParent) return parent.sampled;
    return traceIdBelowRatio(parent.traceId, sampling.ratio);
  }
  if (sampling.ratio >= 1) return true;
  if (sampling.ratio <= 0) return false;
  return random() < sampling.ratio;
}

/**
 * A ratio decision that every participant of a trace makes alike: the trace id's last 7 bytes
 * (the random part in Trace Context level 2) read as a fraction.
 */
export function traceIdBelowRatio(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  // Their first 52 bits: exact in a double.
  return Number.parseInt(traceId.slice(18, 31), 16) / 2 ** 52 < ratio;
}
