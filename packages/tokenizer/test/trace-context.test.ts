import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TRACE_SAMPLING,
  decideTracing,
  formatTraceparent,
  parseTraceparent,
  traceIdBelowRatio,
} from '../src/trace-context.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

describe('parseTraceparent (W3C Trace Context)', () => {
  it('reads trace id, parent id and the sampled flag', () => {
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-01`)).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      sampled: true,
    });
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-00`)?.sampled).toBe(false);
    // Other flag bits (level 2's random flag) leave the sampled bit alone.
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-03`)?.sampled).toBe(true);
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-02`)?.sampled).toBe(false);
  });

  it('reads a later version by its version-00 fields, ignoring what it appends', () => {
    expect(parseTraceparent(`cc-${TRACE_ID}-${SPAN_ID}-01-what-the-future-adds`)).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      sampled: true,
    });
    expect(parseTraceparent(`cc-${TRACE_ID}-${SPAN_ID}-01`)?.traceId).toBe(TRACE_ID);
  });

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['repeated (two headers)', [`00-${TRACE_ID}-${SPAN_ID}-01`, `00-${TRACE_ID}-${SPAN_ID}-01`]],
    ['version ff', `ff-${TRACE_ID}-${SPAN_ID}-01`],
    ['version 00 with more fields', `00-${TRACE_ID}-${SPAN_ID}-01-extra`],
    ['a later version with no dash after the flags', `cc-${TRACE_ID}-${SPAN_ID}-01x`],
    ['upper case', `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${SPAN_ID}-01`],
    ['an all-zero parent id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['a short trace id', `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`],
    ['flags that are not hex', `00-${TRACE_ID}-${SPAN_ID}-0g`],
    ['a wrong separator', `00_${TRACE_ID}-${SPAN_ID}-01`],
  ])('refuses %s (the request then starts its own trace)', (_label, header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });

  it('writes the span context it gives the upstream', () => {
    expect(formatTraceparent(TRACE_ID, SPAN_ID)).toBe(`00-${TRACE_ID}-${SPAN_ID}-01`);
    expect(parseTraceparent(formatTraceparent(TRACE_ID, SPAN_ID))).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      sampled: true,
    });
  });
});

describe('decideTracing', () => {
  const sampledParent = { traceId: TRACE_ID, spanId: SPAN_ID, sampled: true };
  const unsampledParent = { ...sampledParent, sampled: false };
  const noRandom = () => {
    throw new Error('no random number is drawn for this request');
  };

  it("parent-based: follows the caller's sampled flag, whatever the ratio, without drawing", () => {
    for (const ratio of [0, 0.1, 1]) {
      expect(decideTracing({ followParent: true, ratio }, sampledParent, noRandom)).toBe(true);
      expect(decideTracing({ followParent: true, ratio }, unsampledParent, noRandom)).toBe(false);
    }
  });

  it('without a parent: always_on and always_off draw nothing, a ratio draws once', () => {
    expect(decideTracing({ followParent: true, ratio: 1 }, undefined, noRandom)).toBe(true);
    expect(decideTracing({ followParent: false, ratio: 0 }, undefined, noRandom)).toBe(false);
    expect(decideTracing({ followParent: true, ratio: 0.1 }, undefined, () => 0.0999)).toBe(true);
    expect(decideTracing({ followParent: true, ratio: 0.1 }, undefined, () => 0.1)).toBe(false);
  });

  it('samples about the configured share of requests without trace context', () => {
    let traced = 0;
    for (let index = 0; index < 100_000; index++) {
      if (decideTracing(DEFAULT_TRACE_SAMPLING, undefined)) traced++;
    }
    // 0.1 ± 5 standard deviations (σ ≈ 0.00095).
    expect(traced / 100_000).toBeGreaterThan(0.095);
    expect(traced / 100_000).toBeLessThan(0.105);
  });

  it('traceidratio ignores the flag and decides by the trace id, as every participant would', () => {
    const low = { traceId: `${'f'.repeat(18)}00000000000001`, spanId: SPAN_ID, sampled: false };
    const high = { traceId: `${'0'.repeat(18)}ffffffffffffff`, spanId: SPAN_ID, sampled: true };
    expect(decideTracing({ followParent: false, ratio: 0.5 }, low, noRandom)).toBe(true);
    expect(decideTracing({ followParent: false, ratio: 0.5 }, high, noRandom)).toBe(false);
    expect(traceIdBelowRatio(`${'0'.repeat(18)}80000000000000`, 0.5)).toBe(false);
    expect(traceIdBelowRatio(`${'0'.repeat(18)}7fffffffffffff`, 0.5)).toBe(true);
    expect(traceIdBelowRatio(high.traceId, 1)).toBe(true);
    expect(traceIdBelowRatio(low.traceId, 0)).toBe(false);
  });
});
