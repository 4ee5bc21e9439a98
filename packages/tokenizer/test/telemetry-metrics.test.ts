import { AggregationTemporality, DataPointType, type MetricData } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { DURATION_BOUNDARIES, RequestMetrics } from '../src/telemetry-metrics.js';

// What the SDK's metric reader receives from the proxy's own counters (the reader then merges it
// with the SDK's resource and exports it; telemetry.integration.test.ts checks the bytes).

async function collect(metrics: RequestMetrics): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await metrics.collect();
  expect(errors).toEqual([]);
  expect(resourceMetrics.scopeMetrics).toHaveLength(1);
  expect(resourceMetrics.scopeMetrics[0]?.scope).toEqual({ name: '@keyward/tokenizer', version: '9.9.9' });
  return new Map(resourceMetrics.scopeMetrics[0]?.metrics.map((metric) => [metric.descriptor.name, metric]));
}

describe('RequestMetrics', () => {
  it('counts requests by outcome, cumulatively, with one attribute set per outcome', async () => {
    const metrics = new RequestMetrics({ name: '@keyward/tokenizer', version: '9.9.9' });
    for (let index = 0; index < 3; index++) metrics.record('forwarded', 200, undefined, 0.002);
    metrics.record('denied', 407, 'BAD_PROXY_AUTH', 0.0001);
    metrics.record('forwarded', 200, undefined, 0.003);
    metrics.record('error', 502, 'UPSTREAM_FAILED', 0.2);
    const requests = (await collect(metrics)).get('keyward.tokenizer.requests');
    expect(requests).toMatchObject({
      descriptor: { unit: '{request}' },
      dataPointType: DataPointType.SUM,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      isMonotonic: true,
    });
    expect(requests?.dataPoints.map((point) => [point.attributes, point.value])).toEqual([
      [{ 'keyward.tokenizer.decision': 'forwarded', 'http.response.status_code': 200 }, 4],
      [
        {
          'keyward.tokenizer.decision': 'denied',
          'http.response.status_code': 407,
          'error.type': 'BAD_PROXY_AUTH',
        },
        1,
      ],
      [
        {
          'keyward.tokenizer.decision': 'error',
          'http.response.status_code': 502,
          'error.type': 'UPSTREAM_FAILED',
        },
        1,
      ],
    ]);
    // Cumulative: a second collection carries on from the first.
    metrics.record('forwarded', 200, undefined, 0.002);
    expect((await collect(metrics)).get('keyward.tokenizer.requests')?.dataPoints[0]?.value).toBe(5);
  });

  it('keeps the latency histogram in OTLP buckets (upper bounds inclusive, one overflow bucket)', async () => {
    const metrics = new RequestMetrics({ name: '@keyward/tokenizer', version: '9.9.9' });
    for (const seconds of [0.0005, 0.001, 0.0011, 0.3, 10, 42])
      metrics.record('forwarded', 200, undefined, seconds);
    const histogram = (await collect(metrics)).get('keyward.tokenizer.request.duration');
    expect(histogram).toMatchObject({ dataPointType: DataPointType.HISTOGRAM, descriptor: { unit: 's' } });
    const point = histogram?.dataPoints[0];
    expect(point?.attributes).toEqual({});
    expect(point?.value).toEqual({
      buckets: {
        boundaries: [...DURATION_BOUNDARIES],
        // ≤0.001: 2; ≤0.0025: 1; ≤0.5: 1; ≤10: 1; above 10: 1.
        counts: [2, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1],
      },
      sum: 0.0005 + 0.001 + 0.0011 + 0.3 + 10 + 42,
      count: 6,
      min: 0.0005,
      max: 42,
    });
  });

  it('reads requests in flight at collection', async () => {
    const metrics = new RequestMetrics({ name: '@keyward/tokenizer', version: '9.9.9' });
    let inFlight = 3;
    metrics.observeInFlight(() => inFlight);
    const first = (await collect(metrics)).get('keyward.tokenizer.requests.in_flight');
    expect(first).toMatchObject({ dataPointType: DataPointType.SUM, isMonotonic: false });
    expect(first?.dataPoints[0]?.value).toBe(3);
    inFlight = 0;
    expect((await collect(metrics)).get('keyward.tokenizer.requests.in_flight')?.dataPoints[0]?.value).toBe(
      0,
    );
  });

  it('counts outcomes past 1024 distinct ones under otel.metric.overflow', async () => {
    const metrics = new RequestMetrics({ name: '@keyward/tokenizer', version: '9.9.9' });
    for (let index = 0; index < 1030; index++) metrics.record('denied', 400, `CODE_${index}`, 0.001);
    const points = (await collect(metrics)).get('keyward.tokenizer.requests')?.dataPoints ?? [];
    expect(points).toHaveLength(1025);
    expect(points.at(-1)).toMatchObject({ attributes: { 'otel.metric.overflow': true }, value: 6 });
    expect(points.reduce((total, point) => total + (point.value as number), 0)).toBe(1030);
  });
});
