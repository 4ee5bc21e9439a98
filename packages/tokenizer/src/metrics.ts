const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Plain-data view of the counters, so cluster workers can send theirs to the primary. */
export interface MetricsSnapshot {
  requests: Record<string, number>;
  buckets: number[];
  durationSum: number;
  durationCount: number;
  inFlight: number;
  upstreamErrors: number;
  cacheHits: number;
  cacheMisses: number;
  cacheEntries: number;
}

/** Prometheus counters for the proxy. */
export class ProxyMetrics {
  private readonly requests = new Map<string, number>();
  private readonly bucketCounts = new Array<number>(DURATION_BUCKETS.length).fill(0);
  private durationSum = 0;
  private durationCount = 0;
  inFlight = 0;
  upstreamErrors = 0;

  private readonly labelKeys = new Map<string, string>();

  /** The previous request's outcome and its label string: most requests repeat it. */
  private lastStatus = -1;
  private lastDecision = '';
  private lastKey = '';

  recordRequest(status: number, decision: string, durationSeconds: number): void {
    let key: string | undefined;
    if (status === this.lastStatus && decision === this.lastDecision) key = this.lastKey;
    else {
      // Label strings are built once per (decision, status) pair, not per request.
      const short = decision + status;
      key = this.labelKeys.get(short);
      if (key === undefined) {
        key = `decision="${decision}",status="${status}"`;
        if (this.labelKeys.size < 1024) this.labelKeys.set(short, key);
      }
      this.lastStatus = status;
      this.lastDecision = decision;
      this.lastKey = key;
    }
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    this.durationSum += durationSeconds;
    this.durationCount++;
    for (let index = 0; index < DURATION_BUCKETS.length; index++) {
      if (durationSeconds <= (DURATION_BUCKETS[index] as number)) {
        this.bucketCounts[index] = (this.bucketCounts[index] as number) + 1;
      }
    }
  }

  snapshot(cache: { hits: number; misses: number; size: number }): MetricsSnapshot {
    return {
      requests: Object.fromEntries(this.requests),
      buckets: [...this.bucketCounts],
      durationSum: this.durationSum,
      durationCount: this.durationCount,
      inFlight: this.inFlight,
      upstreamErrors: this.upstreamErrors,
      cacheHits: cache.hits,
      cacheMisses: cache.misses,
      cacheEntries: cache.size,
    };
  }
}

/** Sums worker snapshots (cluster mode). */
export function mergeSnapshots(snapshots: readonly MetricsSnapshot[]): MetricsSnapshot {
  const merged: MetricsSnapshot = {
    requests: {},
    buckets: new Array<number>(DURATION_BUCKETS.length).fill(0),
    durationSum: 0,
    durationCount: 0,
    inFlight: 0,
    upstreamErrors: 0,
    cacheHits: 0,
    cacheMisses: 0,
    cacheEntries: 0,
  };
  for (const snapshot of snapshots) {
    for (const [labels, value] of Object.entries(snapshot.requests)) {
      merged.requests[labels] = (merged.requests[labels] ?? 0) + value;
    }
    snapshot.buckets.forEach((value, index) => {
      merged.buckets[index] = (merged.buckets[index] as number) + value;
    });
    merged.durationSum += snapshot.durationSum;
    merged.durationCount += snapshot.durationCount;
    merged.inFlight += snapshot.inFlight;
    merged.upstreamErrors += snapshot.upstreamErrors;
    merged.cacheHits += snapshot.cacheHits;
    merged.cacheMisses += snapshot.cacheMisses;
    merged.cacheEntries += snapshot.cacheEntries;
  }
  return merged;
}

/** Prometheus text exposition format. */
export function renderMetrics(snapshot: MetricsSnapshot): string {
  const lines: string[] = [
    '# HELP keyward_tokenizer_requests_total Proxied requests by outcome.',
    '# TYPE keyward_tokenizer_requests_total counter',
  ];
  for (const [labels, value] of Object.entries(snapshot.requests)) {
    lines.push(`keyward_tokenizer_requests_total{${labels}} ${value}`);
  }
  lines.push(
    '# HELP keyward_tokenizer_request_duration_seconds Time from request to response end.',
    '# TYPE keyward_tokenizer_request_duration_seconds histogram',
  );
  DURATION_BUCKETS.forEach((bound, index) => {
    lines.push(`keyward_tokenizer_request_duration_seconds_bucket{le="${bound}"} ${snapshot.buckets[index]}`);
  });
  lines.push(
    `keyward_tokenizer_request_duration_seconds_bucket{le="+Inf"} ${snapshot.durationCount}`,
    `keyward_tokenizer_request_duration_seconds_sum ${snapshot.durationSum}`,
    `keyward_tokenizer_request_duration_seconds_count ${snapshot.durationCount}`,
    '# HELP keyward_tokenizer_in_flight_requests Requests currently being proxied.',
    '# TYPE keyward_tokenizer_in_flight_requests gauge',
    `keyward_tokenizer_in_flight_requests ${snapshot.inFlight}`,
    '# HELP keyward_tokenizer_upstream_errors_total Upstream connection, TLS or protocol failures.',
    '# TYPE keyward_tokenizer_upstream_errors_total counter',
    `keyward_tokenizer_upstream_errors_total ${snapshot.upstreamErrors}`,
    '# HELP keyward_tokenizer_secret_cache_hits_total Sealed tokens served from the opened-secret cache.',
    '# TYPE keyward_tokenizer_secret_cache_hits_total counter',
    `keyward_tokenizer_secret_cache_hits_total ${snapshot.cacheHits}`,
    '# HELP keyward_tokenizer_secret_cache_misses_total Sealed tokens that had to be opened.',
    '# TYPE keyward_tokenizer_secret_cache_misses_total counter',
    `keyward_tokenizer_secret_cache_misses_total ${snapshot.cacheMisses}`,
    '# HELP keyward_tokenizer_secret_cache_entries Opened secrets currently cached.',
    '# TYPE keyward_tokenizer_secret_cache_entries gauge',
    `keyward_tokenizer_secret_cache_entries ${snapshot.cacheEntries}`,
  );
  return `${lines.join('\n')}\n`;
}
