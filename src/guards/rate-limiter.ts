import type { RateClass, RateLimits } from '../config.js';

export interface RateDecision {
  ok: boolean;
  limit: number;
  remaining: number;
  /** unix seconds when the window resets */
  reset: number;
  /** seconds to wait when refused */
  retryAfter: number;
}

/**
 * Fixed one-minute windows per (class, key). Memory stays bounded: the whole table is dropped
 * when the window rolls over, and within a window at most `maxKeys` keys are tracked (past that
 * the oldest key is evicted, Map insertion order). A fixed window allows a burst of up to 2x the
 * limit across a boundary; accepted for its O(1) cost and tiny state.
 */
export class RateLimiter {
  private windowStart = 0;
  private counts = new Map<string, number>();

  constructor(
    private readonly limits: RateLimits,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  take(cls: RateClass, key: string): RateDecision {
    const now = this.roll();
    const k = cls + '\0' + key;
    const used = (this.counts.get(k) ?? 0) + 1;
    if (used === 1 && this.counts.size >= this.maxKeys) {
      const oldest = this.counts.keys().next().value;
      if (oldest !== undefined) this.counts.delete(oldest);
    }
    this.counts.set(k, used);
    return this.decision(cls, used, now);
  }

  /** The caller's state without counting a request (for answers that never reached the limiter). */
  peek(cls: RateClass, key: string): RateDecision {
    const now = this.roll();
    return this.decision(cls, this.counts.get(cls + '\0' + key) ?? 0, now);
  }

  private roll(): number {
    const now = this.now();
    const windowStart = now - (now % 60_000);
    if (windowStart !== this.windowStart) {
      this.windowStart = windowStart;
      this.counts = new Map();
    }
    return now;
  }

  private decision(cls: RateClass, used: number, now: number): RateDecision {
    const limit = this.limits[cls];
    const resetMs = this.windowStart + 60_000;
    const ok = used <= limit;
    return {
      ok,
      limit,
      remaining: Math.max(0, limit - used),
      reset: Math.ceil(resetMs / 1000),
      retryAfter: ok ? 0 : Math.max(1, Math.ceil((resetMs - now) / 1000)),
    };
  }

  /** Number of keys tracked now (for tests of the memory bound). */
  get size(): number {
    return this.counts.size;
  }
}
