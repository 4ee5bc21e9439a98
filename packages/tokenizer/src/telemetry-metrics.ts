import { type Attributes, type HrTime, ValueType } from '@opentelemetry/api';
import { hrTime, type InstrumentationScope } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';

// The proxy's OpenTelemetry metrics, counted here and handed to the SDK's metric reader as a
// MetricProducer at collection time. A request costs a few comparisons and increments: the SDK's
// own instruments hash the attribute set and look up its storage on every call. Loaded only with
// the SDK (telemetry-sdk.ts imports it).

/** The Prometheus defaults, as the admin endpoint's histogram (metrics.ts). */
export const DURATION_BOUNDARIES: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** Distinct outcomes counted separately; the rest are counted under `otel.metric.overflow`. */
const MAX_OUTCOMES = 1024;
const OVERFLOW_ATTRIBUTES: Attributes = Object.freeze({ 'otel.metric.overflow': true });
const NO_ATTRIBUTES: Attributes = Object.freeze({});

/** Requests with one outcome. Attributes are built once per outcome, never per request. */
interface Outcome {
  decision: string;
  status: number;
  error: string | undefined;
  attributes: Attributes;
  count: number;
}

export class RequestMetrics implements MetricProducer {
  private readonly outcomes = new Map<string, Outcome>();
  /** Most requests have the outcome of the one before: no key is built for them. */
  private last: Outcome | undefined = undefined;
  private overflow: Outcome | undefined = undefined;
  /** Non-cumulative counts, one per boundary plus the overflow bucket (OTLP's layout). */
  private readonly bucketCounts = new Array<number>(DURATION_BOUNDARIES.length + 1).fill(0);
  private durationSum = 0;
  private durationCount = 0;
  private durationMin = Number.POSITIVE_INFINITY;
  private durationMax = Number.NEGATIVE_INFINITY;
  private readInFlight: () => number = () => 0;
  private readonly startTime: HrTime = hrTime();

  constructor(private readonly scope: InstrumentationScope) {}

  /** Requests in flight, read at collection. */
  observeInFlight(read: () => number): void {
    this.readInFlight = read;
  }

  record(decision: string, status: number, error: string | undefined, seconds: number): void {
    let outcome = this.last;
    if (
      outcome === undefined ||
      outcome.status !== status ||
      outcome.decision !== decision ||
      outcome.error !== error
    ) {
      outcome = this.outcomeOf(decision, status, error);
      this.last = outcome;
    }
    outcome.count++;
    let bucket = 0;
    while (bucket < DURATION_BOUNDARIES.length && seconds > (DURATION_BOUNDARIES[bucket] as number)) bucket++;
    this.bucketCounts[bucket] = (this.bucketCounts[bucket] as number) + 1;
    this.durationSum += seconds;
    this.durationCount++;
    if (seconds < this.durationMin) this.durationMin = seconds;
    if (seconds > this.durationMax) this.durationMax = seconds;
  }

  async collect(): Promise<CollectionResult> {
    const endTime = hrTime();
    const point = <T>(value: T, attributes: Attributes) => ({
      startTime: this.startTime,
      endTime,
      attributes,
      value,
    });
    const outcomes = [...this.outcomes.values()];
    if (this.overflow !== undefined) outcomes.push(this.overflow);
    const metrics: MetricData[] = [
      {
        descriptor: {
          name: 'keyward.tokenizer.requests',
          description: 'Proxied requests by outcome.',
          unit: '{request}',
          valueType: ValueType.INT,
        },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.SUM,
        isMonotonic: true,
        dataPoints: outcomes.map((outcome) => point(outcome.count, outcome.attributes)),
      },
      {
        descriptor: {
          name: 'keyward.tokenizer.request.duration',
          description: 'Time from request to response end.',
          unit: 's',
          valueType: ValueType.DOUBLE,
        },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: [
          point(
            {
              buckets: { boundaries: [...DURATION_BOUNDARIES], counts: [...this.bucketCounts] },
              sum: this.durationSum,
              count: this.durationCount,
              ...(this.durationCount > 0 ? { min: this.durationMin, max: this.durationMax } : {}),
            },
            NO_ATTRIBUTES,
          ),
        ],
      },
      {
        descriptor: {
          name: 'keyward.tokenizer.requests.in_flight',
          description: 'Requests currently being proxied.',
          unit: '{request}',
          valueType: ValueType.INT,
        },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.SUM,
        isMonotonic: false,
        dataPoints: [point(this.readInFlight(), NO_ATTRIBUTES)],
      },
    ];
    // The reader keeps its own (the SDK's) resource and ignores this one.
    return {
      resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: this.scope, metrics }] },
      errors: [],
    };
  }

  private outcomeOf(decision: string, status: number, error: string | undefined): Outcome {
    const key = error === undefined ? `${decision} ${status}` : `${decision} ${status} ${error}`;
    let outcome = this.outcomes.get(key);
    if (outcome !== undefined) return outcome;
    if (this.outcomes.size >= MAX_OUTCOMES) {
      this.overflow ??= {
        decision: '',
        status: 0,
        error: undefined,
        attributes: OVERFLOW_ATTRIBUTES,
        count: 0,
      };
      return this.overflow;
    }
    outcome = {
      decision,
      status,
      error,
      attributes: {
        'keyward.tokenizer.decision': decision,
        'http.response.status_code': status,
        ...(error === undefined ? {} : { 'error.type': error }),
      },
      count: 0,
    };
    this.outcomes.set(key, outcome);
    return outcome;
  }
}
