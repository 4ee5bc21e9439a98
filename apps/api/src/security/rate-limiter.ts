export interface RateLimit {
  /** Requests allowed per window. */
  limit: number;
  windowMilliseconds: number;
}

/**
 * A sliding-log limiter: remembers the times of the last `limit` accepted
 * requests per key. Small and exact; the keys are a handful of route groups.
 */
export class RateLimiter {
  readonly #accepted = new Map<string, number[]>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Accepts the request (and counts it) or returns how many seconds to wait. */
  take(key: string, rule: RateLimit): { allowed: true } | { allowed: false; retryAfterSeconds: number } {
    const now = this.#now();
    const since = now - rule.windowMilliseconds;
    const times = (this.#accepted.get(key) ?? []).filter((time) => time > since);
    if (times.length >= rule.limit) {
      this.#accepted.set(key, times);
      const oldest = times[0] ?? now;
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest - since) / 1000)) };
    }
    times.push(now);
    this.#accepted.set(key, times);
    return { allowed: true };
  }
}
