import nactModule from 'nact';
import { ApiError, isApiError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { Mailbox } from './mailbox.js';
import type { ActorKind, Behaviour, SelfRef } from '../src/contracts/actor-kind.js';
import type { LocalActors } from '../src/contracts/actor-directory.js';

// nact ships partly wrong types (see reference/toolchain.md): use the runtime shape we rely on.
interface NactRef { readonly name: string }
interface NactSupervisionCtx { stop: symbol; reset: symbol; resume: symbol }
interface NactApi {
  start(...ext: unknown[]): NactRef;
  spawn(parent: NactRef, f: (state: any, msg: any, ctx: { sender?: NactRef }) => unknown, name?: string, props?: object): NactRef;
  dispatch(ref: NactRef, msg: unknown, sender?: NactRef): void;
  stop(ref: NactRef): void;
}
const nact = nactModule as unknown as NactApi;

export type { ActorKind, Behaviour, SelfRef, StopReason } from '../src/contracts/actor-kind.js';

/** A kind's bookkeeping: its nact supervisor and its live actors by key. */
interface KindRecord {
  readonly kind: ActorKind<any, any>;
  readonly supervisor: NactRef;
  readonly entries: Map<string, Entry>;
  readonly registry: ActorRegistry;
}

/**
 * One live actor: its mailbox (the messages waiting for it, in order), its behaviour (state
 * rebuilt from SQLite) and its bookkeeping. An idle actor is only this object: its nact child
 * exists while messages need it (queued, being handled, or a crash being supervised), and the
 * mailbox array only while messages are queued. The entry is also the actor's SelfRef (no
 * closure per actor).
 */
class Entry extends Mailbox<Pending> implements SelfRef<unknown> {
  ref: NactRef | undefined = undefined;
  behaviour: Behaviour<any, any> | undefined = undefined;
  inflight = 0;
  restarts = 0;
  restartWindowStart = 0;
  /** A drain message is in the nact mailbox (or being handled). */
  scheduled = false;
  /** Asked to stop while busy: stopped as soon as it is idle (by the sweep or the end of a drain). */
  retiring = false;

  /** lastUsed: ms since the registry started (a small integer, not a heap number per actor). */
  constructor(readonly home: KindRecord, readonly key: string, public lastUsed: number) {
    super();
  }

  tell(msg: unknown): void {
    this.home.registry.tell(this.home.kind.name, this.key, msg);
  }
}

/** One message for an actor; resolve/reject are set for an ask. */
interface Pending {
  msg: unknown;
  resolve?: (value: unknown) => void;
  reject?: (e: unknown) => void;
  timer?: NodeJS.Timeout;
  settled?: boolean;
}

function settle(p: Pending, ok: boolean, value: unknown): void {
  if (p.settled) return;
  p.settled = true;
  if (p.timer) clearTimeout(p.timer);
  if (ok) p.resolve?.(value);
  else p.reject?.(value);
}

/** Messages handled per drain before yielding to the event loop (and to other actors). */
const DRAIN_BATCH = 8192;

export interface RegistryOptions {
  log: Logger;
  /** An actor idle this long (no messages, no busy work) is stopped; its next message rebuilds it. */
  idleMs: number;
  queryTimeoutMs?: number;
  now?: () => number;
}

export interface RegistryEvents {
  onCrash?(kind: string, key: string, err: unknown): void;
  onPassivate?(kind: string, key: string): void;
}

const RESTART_WINDOW_MS = 60_000;

/**
 * Looks up or spawns the actor for (kind, key). Each kind has one nact supervisor actor; an
 * actor with messages to handle runs in a nact child of it: a crash restarts only the crashed
 * actor, from SQLite, after a backoff. The child goes when its mailbox is drained (an idle actor
 * is a bare entry: key, state, counters) and comes back with the next message. Idle actors are
 * passivated by one sweep timer rather than a timer per actor.
 */
export class ActorRegistry implements LocalActors {
  private readonly system: NactRef;
  private readonly kinds = new Map<string, KindRecord>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly now: () => number;
  /** Entry timestamps count from here: small integers instead of a heap number per actor. */
  private readonly epoch: number;
  private readonly queryTimeoutMs: number;
  private stoppedAll = false;
  /** Entries drained in this turn of the event loop: their children go in the next (releaseSoon). */
  private idle: Entry[] = [];
  /** The one function and the one set of props every nact child runs with (no closure per actor). */
  private readonly childProps = { onCrash: (msg: Entry, err: unknown, ctx: NactSupervisionCtx) => this.onCrash(msg, err, ctx) };
  private readonly childBody = (_state: unknown, entry: Entry) => this.drain(entry);
  events: RegistryEvents = {};

  constructor(private readonly opts: RegistryOptions) {
    this.system = nact.start({ name: `panthers-${process.pid}-${Math.random().toString(36).slice(2, 8)}` });
    this.now = opts.now ?? Date.now;
    this.epoch = this.now();
    this.queryTimeoutMs = opts.queryTimeoutMs ?? 15_000;
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(opts.idleMs / 4, 30_000)));
    this.sweeper.unref();
  }

  private stamp(): number {
    return this.now() - this.epoch;
  }

  register(kind: ActorKind<any, any>): void {
    if (this.kinds.has(kind.name)) throw new Error(`actor kind ${kind.name} already registered`);
    // The supervisor itself holds no state; it exists so each kind's actors share one parent.
    const supervisor = nact.spawn(this.system, (s: unknown) => s, kind.name);
    this.kinds.set(kind.name, { kind, supervisor, entries: new Map(), registry: this });
  }

  /** Sends a message and waits for the reply. ApiErrors thrown by the actor are rethrown here. */
  async ask<R = unknown>(kindName: string, key: string, msg: unknown, timeoutMs = this.queryTimeoutMs): Promise<R> {
    const entry = this.entry(kindName, key);
    entry.inflight++;
    entry.lastUsed = this.stamp();
    try {
      return (await new Promise<unknown>((resolve, reject) => {
        const p: Pending = { msg, resolve, reject };
        p.timer = setTimeout(() => {
          if (p.settled) return;
          p.settled = true;
          reject(new ApiError('TIMEOUT', `The ${kindName} actor did not answer in ${timeoutMs} ms`));
        }, timeoutMs);
        this.enqueue(entry, p);
      })) as R;
    } finally {
      entry.inflight--;
      entry.lastUsed = this.stamp();
    }
  }

  /** Sends a message without waiting. Failures are logged by the actor's supervisor. */
  tell(kindName: string, key: string, msg: unknown): void {
    // Work finishing after shutdown (a provider call, a timer) reports to nobody: that is fine.
    if (this.stoppedAll) return;
    // No clock read per tell: a queued actor is busy (never swept), and the drain stamps lastUsed.
    this.enqueue(this.entry(kindName, key), { msg });
  }

  /**
   * Queues a message and makes sure one drain message is in the actor's nact mailbox. nact runs
   * one message per event-loop turn (a setImmediate each); under load a turn takes a while, so
   * 1,000 chats opened at once on one agent were admitted one per turn, ~0.5 s for the last.
   * The handler now takes every message pending when it runs, still one at a time and in order.
   */
  private enqueue(entry: Entry, p: Pending): void {
    entry.push(p);
    if (!entry.scheduled) this.schedule(entry);
  }

  /** Puts a drain message (the entry itself) in the actor's nact mailbox, spawning its child if idle. */
  private schedule(entry: Entry): void {
    entry.scheduled = true;
    entry.ref ??= nact.spawn(entry.home.supervisor, this.childBody, entry.key, this.childProps);
    nact.dispatch(entry.ref, entry);
  }

  /**
   * The child goes once the event loop has run the callers' continuations: an actor asked again
   * at once (a caller awaiting one ask after another) keeps its child instead of a stop and a
   * spawn per message; one left idle by this turn is bare by the next.
   */
  private releaseSoon(entry: Entry): void {
    this.idle.push(entry);
    if (this.idle.length === 1) setImmediate(this.releaseIdle);
  }

  private readonly releaseIdle = (): void => {
    const idle = this.idle;
    this.idle = [];
    for (const e of idle) if (!e.scheduled && e.length === 0) this.release(e);
  };

  /** Idle: the nact child and the mailbox array go; the next message brings them back. */
  private release(entry: Entry): void {
    if (entry.ref !== undefined) {
      nact.stop(entry.ref);
      entry.ref = undefined;
    }
    entry.dropBuffer();
  }

  /** Number of live (spawned, not passivated) actors of a kind. */
  count(kindName: string): number {
    return this.kinds.get(kindName)?.entries.size ?? 0;
  }

  /** Live actors per kind, for /metrics. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, k] of this.kinds) out[name] = k.entries.size;
    return out;
  }

  isLive(kindName: string, key: string): boolean {
    return this.kinds.get(kindName)?.entries.has(key) ?? false;
  }

  /**
   * Stops one actor (its next message rebuilds it from SQLite). An actor that is busy (messages
   * pending or being handled, asks waiting, or work of its own such as a streaming turn) is only
   * marked, and stopped once idle: stopping it then would drop its pending messages and let a
   * second instance run beside the first.
   */
  passivate(kindName: string, key: string): void {
    const entry = this.kinds.get(kindName)?.entries.get(key);
    if (!entry) return;
    if (this.isBusy(entry)) {
      entry.retiring = true;
      return;
    }
    this.stop(entry);
  }

  private stop(entry: Entry): void {
    const { kind, entries } = entry.home;
    entries.delete(entry.key);
    entry.behaviour?.stopped?.('passivated');
    this.release(entry);
    this.events.onPassivate?.(kind.name, entry.key);
  }

  /** Passivates every actor idle longer than idleMs. Runs on a timer; exposed for tests. */
  sweep(): void {
    const cutoff = this.stamp() - this.opts.idleMs;
    for (const k of this.kinds.values()) {
      for (const entry of k.entries.values()) {
        if ((entry.retiring || entry.lastUsed <= cutoff) && !this.isBusy(entry)) this.stop(entry);
      }
    }
  }

  private isBusy(entry: Entry): boolean {
    return entry.inflight > 0 || entry.scheduled || entry.length > 0 || (entry.behaviour?.busy?.() ?? false);
  }

  /**
   * Cluster handoff: stopping this actor now cuts nothing (no message queued or being handled,
   * no work a move would lose: `Behaviour.movable`, else not busy). A planned drain stops such
   * actors at once and waits only for the others.
   */
  movable(kindName: string, key: string): boolean {
    const entry = this.kinds.get(kindName)?.entries.get(key);
    if (!entry) return true;
    if (entry.inflight > 0 || entry.scheduled || entry.length > 0) return false;
    const b = entry.behaviour;
    return b?.movable ? b.movable() : !(b?.busy?.() ?? false);
  }

  /** Keys of the live actors of a kind (cluster mode: the actors of a shard being passivated). */
  liveKeys(kindName: string): string[] {
    return [...(this.kinds.get(kindName)?.entries.keys() ?? [])];
  }

  /**
   * Stops one actor NOW, busy or not (cluster mode: its shard's lease is lost, so it must not act
   * a moment longer; its writes would be fenced anyway). Messages waiting for it are refused with
   * `reason` (SERVICE_UNAVAILABLE, not_owner: a forwarding caller retries at the new owner).
   */
  evict(kindName: string, key: string, reason = new ApiError('SERVICE_UNAVAILABLE', 'This node no longer owns this actor; retry', { reason: 'not_owner' })): void {
    const k = this.kinds.get(kindName);
    const entry = k?.entries.get(key);
    if (!k || !entry) return;
    k.entries.delete(key);
    for (const p of entry.takeAll()) {
      if (p.settled) continue;
      p.settled = true;
      if (p.timer) clearTimeout(p.timer);
      p.reject?.(reason);
    }
    entry.behaviour?.stopped?.('passivated');
    this.release(entry);
    this.events.onPassivate?.(kindName, key);
  }

  /** Every live actor's behaviour of a kind (shutdown: abort their work before the database closes). */
  behaviours<B = Behaviour>(kindName: string): B[] {
    const out: B[] = [];
    for (const e of this.kinds.get(kindName)?.entries.values() ?? []) if (e.behaviour) out.push(e.behaviour as B);
    return out;
  }

  stopAll(): void {
    if (this.stoppedAll) return;
    this.stoppedAll = true;
    clearInterval(this.sweeper);
    for (const k of this.kinds.values()) {
      for (const entry of k.entries.values()) {
        entry.behaviour?.stopped?.('shutdown');
        // Nothing will answer these now: say so instead of leaving their timers to run out.
        for (const p of entry.takeAll()) settle(p, false, new ApiError('SERVICE_UNAVAILABLE', 'The server is shutting down'));
      }
      k.entries.clear();
    }
    nact.stop(this.system);
  }

  private entry(kindName: string, key: string): Entry {
    const k = this.kinds.get(kindName);
    if (!k) throw new Error(`unknown actor kind ${kindName}`);
    if (this.stoppedAll) throw new ApiError('SERVICE_UNAVAILABLE', 'The server is shutting down');
    let entry = k.entries.get(key);
    if (!entry) {
      entry = new Entry(k, key, this.stamp());
      k.entries.set(key, entry);
    }
    return entry;
  }

  /** The nact child's body: handles every pending message, one at a time, in order. */
  private async drain(entry: Entry): Promise<undefined> {
    const kind = entry.home.kind;
    let handled = 0;
    let p: Pending | undefined;
    while ((p = entry.shift()) !== undefined) {
      if (p.settled) continue; // its caller gave up (timeout)
      try {
        let state = entry.behaviour;
        if (state === undefined) {
          state = await kind.create(entry.key, entry);
          entry.behaviour = state;
        }
        let out = state.receive(p.msg);
        // Only a real promise costs a microtask hop: a burst of synchronous messages runs flat out.
        if (out !== null && typeof out === 'object' && typeof (out as Promise<unknown>).then === 'function') out = await out;
        if (p.resolve !== undefined) settle(p, true, out); // a tell has nobody to answer
      } catch (e) {
        if (isApiError(e)) {
          settle(p, false, e);
          continue;
        }
        // Tell the caller now, then crash so the supervisor rebuilds the actor from SQLite.
        settle(p, false, new ApiError('INTERNAL_ERROR'));
        entry.scheduled = false;
        throw e;
      }
      if (++handled >= DRAIN_BATCH && entry.length > 0) {
        // Still scheduled: the next drain message continues in order after other work has run.
        nact.dispatch(entry.ref!, entry);
        return undefined;
      }
    }
    entry.scheduled = false;
    entry.lastUsed = this.stamp();
    this.releaseSoon(entry);
    if (entry.retiring) {
      const { kind: k, entries } = entry.home;
      setImmediate(() => entries.get(entry.key) === entry && this.passivate(k.name, entry.key));
    }
    return undefined;
  }

  /** nact's supervision policy for every child: restart from SQLite after a backoff, or stop. */
  private async onCrash(entry: Entry, err: unknown, ctx: NactSupervisionCtx): Promise<symbol> {
    const { kind, entries } = entry.home;
    const key = entry.key;
    const log = this.opts.log;
    const now = this.stamp();
    if (entry.restarts === 0 || now - entry.restartWindowStart > RESTART_WINDOW_MS) {
      entry.restartWindowStart = now;
      entry.restarts = 0;
    }
    entry.restarts++;
    entry.behaviour?.stopped?.('crashed');
    entry.behaviour = undefined;
    this.events.onCrash?.(kind.name, key, err);
    log.error({ actor: kind.name, key, err, restarts: entry.restarts }, 'actor crashed');
    if (entry.restarts > (kind.maxRestarts ?? 5)) {
      log.error({ actor: kind.name, key }, 'actor crashed too often; stopped until its next message');
      if (entries.get(key) === entry) entries.delete(key);
      entry.ref = undefined; // nact stops it when this returns
      // Messages that came in meanwhile go to a fresh actor.
      const waiting = entry.takeAll();
      setImmediate(() => {
        for (const p of waiting) {
          // Each keeps its own timer: its caller still gets an answer or a TIMEOUT.
          if (p.settled) continue;
          if (this.stoppedAll) {
            settle(p, false, new ApiError('SERVICE_UNAVAILABLE', 'The server is shutting down'));
            continue;
          }
          this.enqueue(this.entry(kind.name, key), p);
        }
      });
      return ctx.stop;
    }
    const base = kind.backoffMs ?? 100;
    await new Promise((r) => setTimeout(r, Math.min(base * 2 ** (entry.restarts - 1), 10_000)));
    // nact resets the actor right after this returns; then drain what arrived meanwhile, or let
    // the child go if nothing did.
    setImmediate(() => {
      if (entries.get(key) !== entry || entry.scheduled) return;
      if (entry.length > 0) this.schedule(entry);
      else this.release(entry);
    });
    return ctx.reset;
  }
}
