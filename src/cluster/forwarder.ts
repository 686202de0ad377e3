import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { ApiError, ERROR_CODES, toApiError, type ErrorCode } from '../errors.js';

interface Served {
  sub: Subscription;
  handle: (msg: unknown) => Promise<{ value: unknown } | undefined>;
  timer?: NodeJS.Timeout;
}

type Reply = { ok: unknown } | { error: { code: string; message: string; details?: Record<string, unknown> } } | { notOwner: true };

/** A forwarded ask given up because this node now owns the shard: run it locally instead. */
export class ForwardAbandoned extends Error {
  constructor(readonly shard: number) {
    super(`shard ${shard} is now owned here`);
    this.name = 'ForwardAbandoned';
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Location-transparent asks across nodes over core NATS request/reply
 * (shared/reference/cluster.md, "Forwarding"): the node that owns a shard serves its subject; any
 * node asks it with a deadline. "No responders" (nobody owns the shard right now) and "not
 * owner" (the lease moved) are retried with jittered backoff (50-400 ms) until the deadline, so
 * a failover shows as latency, not as an error. Errors thrown by the owner travel back as the
 * spec's ApiError.
 */
export class Forwarder {
  private readonly served = new Map<number, Served>();
  /** unserved shards whose subscription still answers "not owner" for a moment */
  private readonly leaving = new Map<number, Served>();
  /** asks sent, asks answered for other nodes, retries (no responders / not owner), asks given up: for /metrics */
  readonly stats = { asked: 0, served: 0, retried: 0, failed: 0 };

  constructor(private readonly nc: NatsConnection, private readonly prefix = 'panthers') {}

  subject(shard: number): string {
    return `${this.prefix}.shard.${shard}`;
  }

  /** Serves a shard this node owns. `handle` returns undefined when the shard is no longer ours. */
  serve(shard: number, handle: (msg: unknown) => Promise<{ value: unknown } | undefined>): void {
    if (this.served.has(shard)) return;
    const back = this.leaving.get(shard);
    if (back) {
      // Served again before its subscription went: keep it, with the new handler.
      clearTimeout(back.timer);
      this.leaving.delete(shard);
      back.handle = handle;
      this.served.set(shard, back);
      return;
    }
    const entry: Served = { sub: undefined as unknown as Subscription, handle };
    entry.sub = this.nc.subscribe(this.subject(shard), {
      callback: (err, m) => {
        if (err) return;
        let body: unknown;
        try {
          body = JSON.parse(dec.decode(m.data));
        } catch {
          m.respond(enc.encode(JSON.stringify({ error: { code: 'INVALID_REQUEST', message: 'malformed forwarded message' } } satisfies Reply)));
          return;
        }
        this.stats.served++;
        entry.handle(body).then(
          (r) => m.respond(enc.encode(JSON.stringify((r ? { ok: r.value } : { notOwner: true }) satisfies Reply))),
          (e) => {
            const a = toApiError(e);
            m.respond(enc.encode(JSON.stringify({ error: { code: a.code, message: a.message, details: a.details } } satisfies Reply)));
          },
        );
      },
    });
    this.served.set(shard, entry);
  }

  /**
   * Stops serving (the lease was lost or released). For a moment the subscription stays and
   * answers "not owner", so asks already on their way here are retried at once instead of
   * waiting out their deadline; in-flight answers still go out.
   */
  unserve(shard: number, graceMs = 1000): void {
    const e = this.served.get(shard);
    if (!e) return;
    this.served.delete(shard);
    e.handle = async () => undefined;
    if (graceMs <= 0) return e.sub.unsubscribe();
    this.leaving.set(shard, e);
    e.timer = setTimeout(() => {
      this.leaving.delete(shard);
      e.sub.unsubscribe();
    }, graceMs);
    e.timer.unref();
  }

  /**
   * Asks whoever owns the shard, retrying until the deadline while nobody (or a stale owner) answers.
   * `abandon` is checked before each retry: when it says true (this node just became the owner)
   * the ask ends with ForwardAbandoned so the caller can run it locally.
   */
  async ask<T>(shard: number, msg: unknown, deadlineMs: number, abandon?: () => boolean): Promise<T> {
    const until = performance.now() + deadlineMs;
    const data = enc.encode(JSON.stringify(msg));
    this.stats.asked++;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) this.stats.retried++;
      const left = until - performance.now();
      if (left <= 0) break;
      let reply: Reply | undefined;
      try {
        const m = await this.nc.request(this.subject(shard), data, { timeout: Math.max(1, Math.round(left)) });
        reply = JSON.parse(dec.decode(m.data)) as Reply;
      } catch (e) {
        const err = e as { isNoResponders?: () => boolean; name?: string; cause?: { name?: string } };
        const noResponders = err.isNoResponders?.() === true || err.cause?.name === 'NoRespondersError' || err.name === 'NoRespondersError';
        if (!noResponders) {
          if (performance.now() >= until) break;
          this.stats.failed++;
          throw new ApiError('SERVICE_UNAVAILABLE', 'The node that owns this NFT did not answer in time', { reason: 'forward_failed' });
        }
      }
      if (reply && 'ok' in reply) return reply.ok as T;
      if (reply && 'error' in reply) {
        // A code this build does not know (a newer node) is an INTERNAL_ERROR, not a TypeError.
        if (!Object.hasOwn(ERROR_CODES, reply.error.code)) throw new ApiError('INTERNAL_ERROR');
        throw new ApiError(reply.error.code as ErrorCode, reply.error.message, reply.error.details ?? {});
      }
      // Nobody owns the shard right now, or the lease just moved: wait a little and ask again.
      if (abandon?.()) throw new ForwardAbandoned(shard);
      const backoff = Math.min(400, 50 * 2 ** Math.min(attempt, 3)) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, Math.min(backoff, Math.max(0, until - performance.now()))));
      if (abandon?.()) throw new ForwardAbandoned(shard);
    }
    this.stats.failed++;
    throw new ApiError('SERVICE_UNAVAILABLE', 'No node owns this NFT right now; retry shortly', { reason: 'no_owner' });
  }

  close(): void {
    for (const s of [...this.served.keys()]) this.unserve(s, 0);
    for (const [s, e] of this.leaving) {
      clearTimeout(e.timer);
      e.sub.unsubscribe();
      this.leaving.delete(s);
    }
  }
}
