import type { NatsConnection, Subscription } from '@nats-io/transport-node';

/**
 * Session revocations every node must act on at once (refresh-token reuse, logout, ownership
 * transfer): the revoking node broadcasts `{sid, why}` on `panthers.revoke`; every other node
 * drops the session from its check cache and ends that session's sockets and streams. PostgreSQL
 * stays the truth (a node that missed the message still refuses the session once its cache entry
 * is re-read); the broadcast is what makes it immediate. One process: nothing to tell.
 */
export interface Revocations {
  broadcast(sid: string, why: string): void;
  /** Runs for revocations made on OTHER nodes. */
  onRevoked(handler: (sid: string, why: string) => void): void;
}

export class LocalRevocations implements Revocations {
  broadcast(_sid: string, _why: string): void {}
  onRevoked(_handler: (sid: string, why: string) => void): void {}
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class NatsRevocations implements Revocations {
  private readonly handlers: ((sid: string, why: string) => void)[] = [];
  private readonly sub: Subscription;
  readonly stats = { sent: 0, received: 0, failed: 0 };

  constructor(private readonly nc: NatsConnection, private readonly subject = 'panthers.revoke') {
    this.sub = nc.subscribe(subject, {
      callback: (err, m) => {
        if (err) return;
        let r: { sid?: unknown; why?: unknown };
        try {
          r = JSON.parse(dec.decode(m.data));
        } catch {
          return;
        }
        if (typeof r.sid !== 'string' || typeof r.why !== 'string') return;
        this.stats.received++;
        for (const h of this.handlers) h(r.sid, r.why);
      },
    });
  }

  broadcast(sid: string, why: string): void {
    try {
      this.nc.publish(this.subject, enc.encode(JSON.stringify({ sid, why })));
      this.stats.sent++;
    } catch {
      // Closed or draining connection: the revocation is already in PostgreSQL (the truth), so
      // the request that revoked must not fail; other nodes refuse the session on re-read.
      this.stats.failed++;
    }
  }

  onRevoked(handler: (sid: string, why: string) => void): void {
    this.handlers.push(handler);
  }

  close(): void {
    this.sub.unsubscribe();
  }
}
