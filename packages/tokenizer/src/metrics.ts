const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Prometheus counters for the proxy, rendered in the text exposition format. */
export class ProxyMetrics {
  private readonly requests = new Map<string, number>();
  private readonly bucketCounts = new Array<number>(DURATION_BUCKETS.length).fill(0);
  private durationSum = 0;
  private durationCount = 0;
  inFlight = 0;
  upstreamErrors = 0;

  recordRequest(status: number, decision: string, durationSeconds: number): void {
    const key = `decision="${decision}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    this.durationSum += durationSeconds;
    this.durationCount++;
    for (let index = 0; index < DURATION_BUCKETS.length; index++) {
      if (durationSeconds <= (DURATION_BUCKETS[index] as number))
        this.bucketCounts[index] = (this.bucketCounts[index] as number) + 1;
    }
  }

  render(cache: { hits: number; misses: number; size: number }): string {
    const lines: string[] = [
      '# HELP keyward_tokenizer_requests_total Proxied requests by outcome.',
      '# TYPE keyward_tokenizer_requests_total counter',
    ];
    for (const [labels, value] of this.requests)
      lines.push(`keyward_tokenizer_requests_total{${labels}} ${value}`);
    lines.push(
      '# HELP keyward_tokenizer_request_duration_seconds Time from request to response end.',
      '# TYPE keyward_tokenizer_request_duration_seconds histogram',
    );
    DURATION_BUCKETS.forEach((bound, index) => {
      lines.push(
        `keyward_tokenizer_request_duration_seconds_bucket{le="${bound}"} ${this.bucketCounts[index]}`,
      );
    });
    lines.push(
      `keyward_tokenizer_request_duration_seconds_bucket{le="+Inf"} ${this.durationCount}`,
      `keyward_tokenizer_request_duration_seconds_sum ${this.durationSum}`,
      `keyward_tokenizer_request_duration_seconds_count ${this.durationCount}`,
      '# HELP keyward_tokenizer_in_flight_requests Requests currently being proxied.',
      '# TYPE keyward_tokenizer_in_flight_requests gauge',
      `keyward_tokenizer_in_flight_requests ${this.inFlight}`,
      '# HELP keyward_tokenizer_upstream_errors_total Upstream connection, TLS or protocol failures.',
      '# TYPE keyward_tokenizer_upstream_errors_total counter',
      `keyward_tokenizer_upstream_errors_total ${this.upstreamErrors}`,
      '# HELP keyward_tokenizer_secret_cache_hits_total Sealed tokens served from the opened-secret cache.',
      '# TYPE keyward_tokenizer_secret_cache_hits_total counter',
      `keyward_tokenizer_secret_cache_hits_total ${cache.hits}`,
      '# HELP keyward_tokenizer_secret_cache_misses_total Sealed tokens that had to be opened.',
      '# TYPE keyward_tokenizer_secret_cache_misses_total counter',
      `keyward_tokenizer_secret_cache_misses_total ${cache.misses}`,
      '# HELP keyward_tokenizer_secret_cache_entries Opened secrets currently cached.',
      '# TYPE keyward_tokenizer_secret_cache_entries gauge',
      `keyward_tokenizer_secret_cache_entries ${cache.size}`,
    );
    return `${lines.join('\n')}\n`;
  }
}
