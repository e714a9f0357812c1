/** Per-source token buckets: `burst` uploads refilled evenly over `window_ms`. In memory; a restart refills. */
export class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();

  /** Takes one token; returns 0 when allowed, else the milliseconds until one is available. */
  take(key: string, limit: { burst: number; window_ms: number }, now: number): number {
    const perMs = limit.burst / limit.window_ms;
    const b = this.buckets.get(key) ?? { tokens: limit.burst, at: now };
    b.tokens = Math.min(limit.burst, b.tokens + Math.max(0, now - b.at) * perMs);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / perMs);
  }

  forget(key: string): void {
    this.buckets.delete(key);
  }
}
