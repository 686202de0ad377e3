import type { NatsConnection, Subscription } from '@nats-io/transport-node';

/**
 * Cross-node invalidation of hot synchronous caches (PLAN-17: e.g. the latest deployment per NFT).
 * The node that changed the truth calls `invalidate(what, key)`; every OTHER node's handlers for
 * `what` run with the key and drop their cached entry (the writer updates its own cache itself).
 * In one process there is nobody else: `invalidate` does nothing.
 */
export interface Invalidations {
  invalidate(what: string, key: string): void;
  /** Runs `handler(key)` when another node invalidates `what`; returns the unregister function. */
  onInvalidate(what: string, handler: (key: string) => void): () => void;
}

class Handlers {
  private readonly byWhat = new Map<string, Set<(key: string) => void>>();

  add(what: string, handler: (key: string) => void): () => void {
    let set = this.byWhat.get(what);
    if (!set) this.byWhat.set(what, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  fire(what: string, key: string): void {
    const set = this.byWhat.get(what);
    if (set) for (const h of set) h(key);
  }
}

/** SQLite mode: one process, one cache per truth. */
export class LocalInvalidations implements Invalidations {
  private readonly handlers = new Handlers();
  invalidate(_what: string, _key: string): void {}
  onInvalidate(what: string, handler: (key: string) => void): () => void {
    return this.handlers.add(what, handler);
  }
}

const enc = new TextEncoder();
/** keys of one message, well under NATS's 1 MB default max_payload (keys are ids: ASCII) */
const MAX_BATCH_BYTES = 256 * 1024;
const dec = new TextDecoder();

/**
 * Cluster mode: `panthers.invalidate.<what>` carries the keys invalidated during one event-loop
 * turn, joined by newlines (keys are ids: no newlines). Core NATS is at-most-once, so caches
 * that use this must also bound their staleness (a TTL) or re-check the truth on a miss.
 */
export class NatsInvalidations implements Invalidations {
  private readonly handlers = new Handlers();
  private readonly pending = new Map<string, Set<string>>();
  private scheduled = false;
  private sub: Subscription | undefined;
  readonly stats = { sent: 0, received: 0, failed: 0 };

  constructor(private readonly nc: NatsConnection, private readonly prefix = 'panthers') {
    const base = `${prefix}.invalidate.`;
    this.sub = nc.subscribe(`${base}*`, {
      callback: (err, m) => {
        if (err) return;
        const what = m.subject.slice(base.length);
        for (const key of dec.decode(m.data).split('\n')) {
          this.stats.received++;
          this.handlers.fire(what, key);
        }
      },
    });
  }

  invalidate(what: string, key: string): void {
    let keys = this.pending.get(what);
    if (!keys) this.pending.set(what, (keys = new Set()));
    keys.add(key);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** This node learnt of a change another way (a deployment frame from NATS): run its handlers. */
  local(what: string, key: string): void {
    this.handlers.fire(what, key);
  }

  onInvalidate(what: string, handler: (key: string) => void): () => void {
    return this.handlers.add(what, handler);
  }

  private flush(): void {
    this.scheduled = false;
    for (const [what, keys] of this.pending) {
      // Several messages when one loop turn touched many keys: one message past NATS's
      // max_payload (1 MB by default) would be refused.
      let batch: string[] = [];
      let bytes = 0;
      for (const key of keys) {
        batch.push(key);
        bytes += key.length + 1;
        if (bytes >= MAX_BATCH_BYTES) {
          this.send(what, batch);
          batch = [];
          bytes = 0;
        }
      }
      if (batch.length) this.send(what, batch);
    }
    this.pending.clear();
  }

  private send(what: string, keys: string[]): void {
    try {
      this.nc.publish(`${this.prefix}.invalidate.${what}`, enc.encode(keys.join('\n')));
      this.stats.sent += keys.length;
    } catch {
      // The connection is closed or draining (shutdown): this runs from setImmediate, where a
      // throw would end the process. PostgreSQL stays the truth; other nodes trust a cached row
      // for at most 2 s (docs/cluster.md).
      this.stats.failed += keys.length;
    }
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }
}
