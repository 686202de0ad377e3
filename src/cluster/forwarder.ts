import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { ApiError, ERROR_CODES, toApiError, type ErrorCode } from '../errors.js';

interface Served {
  sub: Subscription;
  handle: (msg: unknown) => Promise<{ value: unknown } | undefined>;
  timer?: NodeJS.Timeout;
}

/** One ask's reply, encoded; `notOwner`: nothing was done (the asker tries again elsewhere). */
interface Answer {
  bytes: Uint8Array;
  notOwner: boolean;
}

/** What an owner remembers of an ask that carried an id: its reply, or the promise of it. */
interface Answered {
  at: number;
  reply: Promise<Answer>;
}

/** An ask id: what ClusterDirectory and RemoteTurns make (a UUID, or `<node tag>:<uuid>`). */
const ASK_ID = /^[A-Za-z0-9:-]{8,80}$/;

/** The message's ask id when it carries a well-formed one (asker and owner read it the same way). */
function askIdOf(msg: unknown): string | undefined {
  const id = (msg as { id?: unknown } | null)?.id;
  return typeof id === 'string' && ASK_ID.test(id) ? id : undefined;
}
/**
 * How long an owner answers a repeated ask id with the first reply. An asker reuses an id only
 * within one ask, i.e. within its deadline (15 s by default, PANTHERS_ACTOR_QUERY_TIMEOUT_MS);
 * a minute covers that with room, like the MAC replay window (cluster-mac.ts, 61 s).
 */
const ANSWERED_MS = 60_000;
/** Bound on remembered asks (a few hundred bytes each): past it the oldest are forgotten first. */
const ANSWERED_MAX = 100_000;
/** One attempt of an ask with an id waits this long for its reply before it is sent again. */
const ATTEMPT_MS = 2_000;
/** An attempt that timed out after at least this long may have reached an owner. */
const CONCLUSIVE_MS = 100;

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
 *
 * Nothing is done twice by a retry: a message with an `id` (every ask ClusterDirectory sends) is
 * run once per owner. A repeated id is answered with the first attempt's reply, or waits for it
 * while it is still running, for ANSWERED_MS; only "not owner" (nothing was done) is forgotten at
 * once, so a later attempt runs. That makes it safe to send such an ask again when an attempt
 * gets no reply within `attemptMs` (a request or reply lost on a link, a request that reached a
 * subscription just as it went): it is retried with the same id instead of waiting out the whole
 * deadline and failing while the owner may be running it.
 */
export class Forwarder {
  private readonly served = new Map<number, Served>();
  /** unserved shards whose subscription still answers "not owner" for a moment */
  private readonly leaving = new Map<number, Served>();
  /** asks with an id this node ran, by `<shard>/<id>`, oldest first */
  private readonly answered = new Map<string, Answered>();
  /**
   * asks sent, asks answered for other nodes, retries (no responders / not owner / no reply in
   * time), asks given up, repeated ids answered with the first reply: for /metrics
   */
  readonly stats = { asked: 0, served: 0, retried: 0, failed: 0, deduped: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix = 'panthers',
    private readonly opts: { attemptMs?: number; answeredMs?: number } = {},
  ) {}

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
        const id = askIdOf(body);
        const key = id === undefined ? undefined : `${shard}/${id}`;
        const first = key === undefined ? undefined : this.answered.get(key);
        if (first) this.stats.deduped++;
        const reply = first?.reply ?? this.run(entry, body);
        if (key !== undefined && !first) this.remember(key, reply);
        void reply.then((a) => m.respond(a.bytes));
      },
    });
    this.served.set(shard, entry);
  }

  /** Runs one ask: its reply, never a rejection. */
  private run(entry: Served, body: unknown): Promise<Answer> {
    return entry.handle(body).then(
      (r) => ({ bytes: enc.encode(JSON.stringify((r ? { ok: r.value } : { notOwner: true }) satisfies Reply)), notOwner: !r }),
      (e) => {
        const a = toApiError(e);
        return { bytes: enc.encode(JSON.stringify({ error: { code: a.code, message: a.message, details: a.details } } satisfies Reply)), notOwner: false };
      },
    );
  }

  /** Keeps an ask's reply for its id's repeats; "not owner" did nothing, so it is forgotten. */
  private remember(key: string, reply: Promise<Answer>): void {
    const now = performance.now();
    const keep = this.opts.answeredMs ?? ANSWERED_MS;
    for (const [k, a] of this.answered) {
      if (now - a.at < keep && this.answered.size < ANSWERED_MAX) break;
      this.answered.delete(k);
    }
    const entry: Answered = { at: now, reply };
    this.answered.set(key, entry);
    void reply.then((a) => {
      if (a.notOwner && this.answered.get(key) === entry) this.answered.delete(key);
    });
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
   * the ask ends with ForwardAbandoned so the caller can run it locally. A message with an `id`
   * is also sent again, with the same id, when an attempt gets no reply within `attemptMs`: the
   * owner answers a repeat with the first attempt's reply, so nothing runs twice.
   */
  async ask<T>(shard: number, msg: unknown, deadlineMs: number, abandon?: () => boolean, resent = false): Promise<T> {
    const until = performance.now() + deadlineMs;
    // Once an attempt may have reached an owner (`resent`: one of the caller's did), every later
    // one says so with `again: 1`: the agent looks a resent turn up before running it.
    const encode = () => enc.encode(JSON.stringify(resent ? { ...(msg as object), again: 1 } : msg));
    let data = encode();
    const delivered = () => {
      if (resent) return;
      resent = true;
      data = encode();
    };
    const repeatable = askIdOf(msg) !== undefined;
    const attemptMs = this.opts.attemptMs ?? ATTEMPT_MS;
    /** an attempt went out and no reply came: the owner may have run it */
    let unanswered = false;
    this.stats.asked++;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) this.stats.retried++;
      const left = until - performance.now();
      if (left <= 0) break;
      let reply: Reply | undefined;
      const timeout = Math.max(1, Math.round(repeatable ? Math.min(left, attemptMs) : left));
      try {
        const m = await this.nc.request(this.subject(shard), data, { timeout });
        reply = JSON.parse(dec.decode(m.data)) as Reply;
      } catch (e) {
        const err = e as { isNoResponders?: () => boolean; name?: string; cause?: { name?: string } };
        const noResponders = err.isNoResponders?.() === true || err.cause?.name === 'NoRespondersError' || err.name === 'NoRespondersError';
        if (!noResponders) {
          delivered();
          const timedOut = err.name === 'TimeoutError' || err.cause?.name === 'TimeoutError';
          // Only an attempt given time for a "no responders" answer says the ask may have been
          // delivered: the last one, cut short by the deadline, says nothing (a loaded machine).
          if (timedOut && timeout >= CONCLUSIVE_MS) unanswered = true;
          if (performance.now() >= until) break;
          if (!repeatable) {
            this.stats.failed++;
            throw new ApiError('SERVICE_UNAVAILABLE', 'The node that owns this NFT did not answer in time', { reason: 'forward_failed' });
          }
          // Lost on the way (a link, a subscription that just went) or slow: the same id again.
          if (abandon?.()) throw new ForwardAbandoned(shard);
          if (timedOut) continue;
        }
      }
      if (reply && 'ok' in reply) return reply.ok as T;
      if (reply && 'error' in reply) {
        // A code this build does not know (a newer node) is an INTERNAL_ERROR, not a TypeError.
        if (!Object.hasOwn(ERROR_CODES, reply.error.code)) throw new ApiError('INTERNAL_ERROR');
        throw new ApiError(reply.error.code as ErrorCode, reply.error.message, reply.error.details ?? {});
      }
      // Nobody owns the shard right now, or the lease just moved: wait a little and ask again.
      // ("not owner" came from one subscriber; NATS also handed the request to any other.)
      if (reply) delivered();
      if (abandon?.()) throw new ForwardAbandoned(shard);
      const backoff = Math.min(400, 50 * 2 ** Math.min(attempt, 3)) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, Math.min(backoff, Math.max(0, until - performance.now()))));
      if (abandon?.()) throw new ForwardAbandoned(shard);
    }
    this.stats.failed++;
    // Delivered and never answered: the work may be going on (or done); the client cannot know.
    if (unanswered) throw new ApiError('SERVICE_UNAVAILABLE', 'The node that owns this NFT did not answer in time; the request may still complete', { reason: 'forward_failed', outcome: 'unknown' });
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
