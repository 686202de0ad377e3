import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { RateLimiter } from '../guards/rate-limiter.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
/** keys per NATS message: well under NATS's 1 MB default payload limit */
const KEYS_PER_MESSAGE = 4000;

/**
 * Kong's "sync_rate" model for rate limits across nodes: each node counts locally (no network on
 * the request path) and every `intervalMs` publishes what it counted since the last sync on
 * `panthers.ratelimit`; the others add it to their view. The error bound is in docs/cluster.md.
 */
export class RateSync {
  private readonly timer: NodeJS.Timeout;
  private readonly sub: Subscription;
  readonly stats = { sent: 0, received: 0, failed: 0 };

  constructor(private readonly nc: NatsConnection, private readonly limiter: RateLimiter, intervalMs: number, private readonly subject = 'panthers.ratelimit') {
    limiter.enableSync();
    this.sub = nc.subscribe(subject, {
      callback: (err, m) => {
        if (err) return;
        try {
          const r = JSON.parse(dec.decode(m.data)) as { w: number; c: [string, number][] };
          if (typeof r.w === 'number' && Array.isArray(r.c)) {
            this.stats.received++;
            limiter.addRemote(r.w, r.c);
          }
        } catch {
          // A malformed message from a node of another version: ignore it.
        }
      },
    });
    this.timer = setInterval(() => this.flush(), intervalMs);
    this.timer.unref();
  }

  flush(): void {
    const d = this.limiter.takeDelta();
    if (!d) return;
    for (let i = 0; i < d.counts.length; i += KEYS_PER_MESSAGE) {
      try {
        this.nc.publish(this.subject, enc.encode(JSON.stringify({ w: d.window, c: d.counts.slice(i, i + KEYS_PER_MESSAGE) })));
        this.stats.sent++;
      } catch {
        // Closed or draining connection: this runs from a timer, where a throw would end the
        // process. The counts stay local (the error bound of a lost sync, docs/cluster.md).
        this.stats.failed++;
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
    this.sub.unsubscribe();
  }
}
