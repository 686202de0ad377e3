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
 * half the table is freed, see compact()). A fixed window allows a burst of up to 2x the
 * limit across a boundary; accepted for its O(1) cost and tiny state.
 */
export class RateLimiter {
  private windowStart = 0;
  private counts = new Map<string, number>();
  /**
   * Cluster mode only (enableSync): other nodes' counts in this window, and what this node
   * counted since its last sync. Undefined in one process: take() pays one undefined check.
   */
  private remote: Map<string, number> | undefined;
  private delta: Map<string, number> | undefined;

  constructor(
    private readonly limits: RateLimits,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  take(cls: RateClass, key: string): RateDecision {
    const now = this.roll();
    const k = cls + '\0' + key;
    const used = (this.counts.get(k) ?? 0) + 1;
    if (used === 1 && this.counts.size >= this.maxKeys) this.compact();
    this.counts.set(k, used);
    const delta = this.delta;
    if (delta !== undefined) {
      delta.set(k, (delta.get(k) ?? 0) + 1);
      return this.decision(cls, used + (this.remote!.get(k) ?? 0), now);
    }
    return this.decision(cls, used, now);
  }

  /** The caller's state without counting a request (for answers that never reached the limiter). */
  peek(cls: RateClass, key: string): RateDecision {
    const now = this.roll();
    const k = cls + '\0' + key;
    return this.decision(cls, (this.counts.get(k) ?? 0) + (this.remote?.get(k) ?? 0), now);
  }

  /**
   * Cluster mode (docs/cluster.md, "Rate limits"): counts stay local and are exchanged every
   * sync interval; a decision uses this node's count plus the others' as last heard.
   */
  enableSync(): void {
    this.remote ??= new Map();
    this.delta ??= new Map();
  }

  /** What this node counted since the last call, in the current window (then forgotten). */
  takeDelta(): { window: number; counts: [string, number][] } | undefined {
    this.roll();
    if (!this.delta || this.delta.size === 0) return undefined;
    const counts = [...this.delta];
    this.delta = new Map();
    return { window: this.windowStart, counts };
  }

  /** Another node's counts for a window: added when it is this node's current window, else dropped. */
  addRemote(window: number, counts: [string, number][]): void {
    this.roll();
    if (window !== this.windowStart || !this.remote) return;
    // Bounded like the local table: dropping other nodes' counts only makes the limit looser.
    if (this.remote.size >= this.maxKeys) this.remote.clear();
    for (const [k, n] of counts) {
      if (typeof k !== 'string' || !Number.isFinite(n) || n <= 0) continue;
      // Sane bounds (a buggy or hostile sender): only known classes, and no key counted past its
      // class's limit + 1 (enough to deny; more only lengthens nothing, the window ends the same).
      const cap = this.capOf(k);
      if (cap === undefined) continue;
      this.remote.set(k, Math.min(cap, (this.remote.get(k) ?? 0) + Math.floor(n)));
    }
  }

  /** limit + 1 for a key `class\0...` of a known class, else undefined */
  private capOf(k: string): number | undefined {
    const sep = k.indexOf('\0');
    if (sep <= 0) return undefined;
    const cls = k.slice(0, sep);
    if (!Object.hasOwn(this.limits, cls)) return undefined;
    const limit = this.limits[cls as RateClass];
    return Number.isFinite(limit) ? limit + 1 : undefined;
  }

  /**
   * Frees half the table when it is full. Evicting one key at a time (`keys().next()`) was
   * measured at 8-40 us per new key under a spray of distinct keys (V8 skips the deleted
   * slots at the front each time); a rebuild every maxKeys/2 new keys is O(1) amortized.
   * Repeat clients (count > 1) are kept first, so a spray of one-off keys cannot reset the
   * count of a client that is actually being limited; then the newest one-off keys.
   */
  private compact(): void {
    const keep = this.maxKeys >> 1;
    const next = new Map<string, number>();
    let oneOffs = 0;
    for (const [k, n] of this.counts) {
      if (n > 1) {
        if (next.size < keep) next.set(k, n);
      } else oneOffs++;
    }
    let skip = oneOffs - (keep - next.size);
    for (const [k, n] of this.counts) {
      if (n !== 1) continue;
      if (skip > 0) skip--;
      else next.set(k, n);
    }
    this.counts = next;
  }

  private roll(): number {
    const now = this.now();
    const windowStart = now - (now % 60_000);
    if (windowStart !== this.windowStart) {
      this.windowStart = windowStart;
      this.counts = new Map();
      if (this.remote) this.remote = new Map();
      if (this.delta) this.delta = new Map();
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
