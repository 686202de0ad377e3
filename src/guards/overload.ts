/**
 * Watches event-loop lag with a 50 ms timer: the lateness of each tick is the lag. While the
 * lag (smoothed) stays above the limit, the server is overloaded and sheds new work with 503.
 */
export class OverloadMonitor {
  private timer: NodeJS.Timeout | undefined;
  private expected = 0;
  /** exponentially smoothed lag, ms */
  lagMs = 0;

  constructor(private readonly limitMs: number, private readonly intervalMs = 50) {}

  start(): void {
    this.expected = performance.now() + this.intervalMs;
    const tick = () => {
      const now = performance.now();
      const lag = Math.max(0, now - this.expected);
      // The newest sample dominates so that shedding starts and stops within a few ticks.
      this.lagMs = this.lagMs * 0.3 + lag * 0.7;
      this.expected = now + this.intervalMs;
      this.timer = setTimeout(tick, this.intervalMs);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, this.intervalMs);
    this.timer.unref();
  }

  get overloaded(): boolean {
    return this.lagMs > this.limitMs;
  }

  /** Seconds a refused client should wait. */
  get retryAfter(): number {
    return Math.max(1, Math.ceil(this.lagMs / 1000));
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
