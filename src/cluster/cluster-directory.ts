import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ActorDirectory } from '../contracts/actor-directory.js';
import { AGENT_ACTOR, type AgentMsg, type ClearHandle, type TurnHandle, type TurnMsg } from '../contracts/agent-messages.js';
import { DEPLOYMENT_ACTOR } from '../contracts/deployment-messages.js';
import { shardOf, SHARDS } from './shards.js';
import { Forwarder, ForwardAbandoned } from './forwarder.js';
import { FrameRelay } from './frame-relay.js';
import { RemoteTurns, type WireTurn, type WireTurnAnswer } from './remote-turns.js';
import { isNotOwner } from '../db/fence.js';

/** Which shards this node holds a lease on now (17d supplies it from ShardLeases). */
export interface LeaseView {
  /** The epoch of this node's lease on the shard, or undefined when it does not hold it (or no longer trusts it). */
  ownedEpoch(shard: number): number | undefined;
}

export interface ClusterDirectoryOptions {
  /** this node's registry: every actor that runs here runs in it */
  local: ActorDirectory;
  leases: LeaseView;
  /** a connection of this node; `noEcho: true` is fine (a node never forwards to itself) */
  nc: NatsConnection;
  log: Logger;
  /** this node's WS publish: a forwarded turn whose owner is lost ends its conversation's stream here */
  localPublish(topic: string, frame: string): void;
  /**
   * Kinds keyed by NFT whose actors live only on the shard's owner. Default: the deployment and
   * the agent of an NFT (they share its shard). Any other kind (the session actor) runs on
   * whichever node is asked: a session is keyed by its id, not an NFT, and its writes are
   * conditional UPDATEs in the store (the refresh rotates only `WHERE refresh_hash = $presented`,
   * a revoke only `WHERE revoked_at IS NULL`), so two nodes racing on one session cannot both
   * win; it must read the row from the store rather than trust a copy another node may have
   * changed (src/auth store, 17c).
   */
  shardedKinds?: readonly string[];
  /** the node's Forwarder (17d: one per node, so /metrics counts every forward); a new one by default */
  forwarder?: Forwarder;
  /** default deadline of an ask (PANTHERS_ACTOR_QUERY_TIMEOUT_MS in the registry: 15 s) */
  timeoutMs?: number;
  subjectPrefix?: string;
  shards?: number;
  /** forwarded turns: owner heartbeat period, and the silence after which the receiver ends the turn */
  heartbeatMs?: number;
  silenceMs?: number;
}

/** A forwarded ask on a shard subject: plain JSON. */
interface WireAsk {
  /**
   * The ask's id, the same on every attempt (Forwarder retries, NOT_OWNER retries): the owner
   * runs an id once and answers its repeats with the first reply. A turn's id is its turn id.
   */
  id: string;
  k: string;
  key: string;
  m?: unknown;
  /** the asker's deadline, so the owner's own TIMEOUT comes back before the asker gives up */
  t?: number;
  tell?: 1;
  /** an agent turn (m is then unused) */
  turn?: WireTurn;
  /** cancel a forwarded turn running on the owner */
  cancel?: { turn: string; reason?: { code: string; message: string; details?: Record<string, unknown> } };
  /** set by Forwarder on an ask sent again after an attempt that may have reached an owner */
  again?: 1;
}

/** Extra time the asker waits beyond the owner's deadline, so the owner's TIMEOUT arrives first. */
const REPLY_MARGIN_MS = 250;

/**
 * The ActorDirectory of a cluster node (issue 17, "single activation"): an ask for an NFT's
 * actor runs in this node's registry when this node holds the lease of the NFT's shard (no
 * serialization: the local path is the one-process path), otherwise it is forwarded over NATS to
 * `panthers.shard.<n>`, which the owner serves (Forwarder: "no responders" and NOT_OWNER are
 * retried with jittered backoff until the deadline, so a lease moving is latency, not an error).
 * Errors come back as the spec's ApiError with the same code, status, message and details.
 *
 * Wiring (17d): `new ClusterDirectory({ local: registry, leases, nc, log, localPublish })` as
 * `ctx.directory`; call `serveShard(n)` when the lease loop claims shard n and `unserveShard(n)`
 * when it loses or releases it (before passivating its actors); `close()` at shutdown before the
 * NATS connection drains.
 */
export class ClusterDirectory implements ActorDirectory {
  private readonly forwarder: Forwarder;
  private readonly relay: FrameRelay;
  readonly turns: RemoteTurns;
  private readonly sharded: Set<string>;
  private readonly timeoutMs: number;
  private readonly shards: number;
  readonly stats = { local: 0, forwarded: 0, served: 0, notOwner: 0, abandoned: 0 };

  constructor(private readonly opts: ClusterDirectoryOptions) {
    this.forwarder = opts.forwarder ?? new Forwarder(opts.nc, opts.subjectPrefix);
    // Turn frames go to one asking node's wildcard subscription, never to this node's sockets.
    this.relay = new FrameRelay(opts.nc, () => {}, opts.subjectPrefix);
    this.turns = new RemoteTurns({ relay: this.relay, nc: opts.nc, subjectPrefix: opts.subjectPrefix, log: opts.log, localPublish: opts.localPublish, heartbeatMs: opts.heartbeatMs, silenceMs: opts.silenceMs });
    this.sharded = new Set(opts.shardedKinds ?? [AGENT_ACTOR, DEPLOYMENT_ACTOR]);
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.shards = opts.shards ?? SHARDS;
  }

  /** The shard an actor's key maps to, or undefined for a kind that runs on any node. */
  shardFor(kind: string, key: string): number | undefined {
    return this.sharded.has(kind) ? shardOf(key, this.shards) : undefined;
  }

  private owns(shard: number): boolean {
    return this.opts.leases.ownedEpoch(shard) !== undefined;
  }

  async ask<R>(kind: string, key: string, msg: unknown, timeoutMs = this.timeoutMs): Promise<R> {
    const shard = this.shardFor(kind, key);
    if (shard === undefined) return this.opts.local.ask<R>(kind, key, msg, timeoutMs);
    const until = performance.now() + timeoutMs;
    // One id for every attempt of this ask: a repeat the owner already ran gets its first reply.
    const id = randomUUID();
    // A turn's id, the same on every attempt and on every owner that runs one: stored with the
    // turn's message, so an owner a resent turn reaches finds what an earlier one stored. Made
    // when first needed: a turn run here at its first attempt needs none (nothing else can have
    // run it), so its rows carry no id and no index entry.
    const isTurn = kind === AGENT_ACTOR && (msg as AgentMsg | undefined)?.type === 'turn';
    let turnId = isTurn ? (msg as TurnMsg).turnId : undefined;
    const turnIdNow = () => (isTurn ? (turnId ??= this.turns.newTurnId()) : undefined);
    // A "not owner" answer did nothing (its fenced write was refused, or the actor was evicted
    // with its shard before the message reached it), so the ask goes again, to wherever the shard
    // is now, until the deadline: a failover or a handoff is latency, not a client error.
    for (let attempt = 0; ; attempt++) {
      const left = Math.max(1, Math.round(until - performance.now()));
      try {
        return await this.askOnce<R>(id, shard, kind, key, msg, left, until, attempt > 0, turnIdNow);
      } catch (e) {
        if (!isNotOwner(e) || until - performance.now() < 100) throw e;
        this.stats.notOwner++;
        await sleep(Math.min(400, 50 * 2 ** attempt) * (0.5 + Math.random() / 2));
      }
    }
  }

  /** `resent`: an earlier attempt of this ask may have reached an owner (it ran, or may have). */
  private async askOnce<R>(id: string, shard: number, kind: string, key: string, msg: unknown, timeoutMs: number, until: number, resent: boolean, turnId: () => string | undefined): Promise<R> {
    if (this.owns(shard)) {
      this.stats.local++;
      return this.opts.local.ask<R>(kind, key, resent ? asResent(msg, turnId()) : msg, timeoutMs);
    }
    const abandon = () => this.owns(shard);
    const tid = turnId();
    try {
      return await this.forward<R>(id, shard, kind, key, (tid ? { ...(msg as TurnMsg), turnId: tid } : msg) as AgentMsg, timeoutMs, abandon, resent);
    } catch (e) {
      if (!(e instanceof ForwardAbandoned)) throw e;
      // The lease came here while the ask was being retried: run it here with the time left
      // (as a resent turn: an attempt may have reached the owner this node took over from).
      this.stats.abandoned++;
      return this.opts.local.ask<R>(kind, key, asResent(msg, tid), Math.max(1, Math.round(until - performance.now())));
    }
  }

  private async forward<R>(id: string, shard: number, kind: string, key: string, msg: AgentMsg, timeoutMs: number, abandon: () => boolean, resent: boolean): Promise<R> {
    this.stats.forwarded++;
    const deadline = timeoutMs + REPLY_MARGIN_MS;
    if (kind === AGENT_ACTOR && msg.type === 'turn') {
      const handle: TurnHandle = await this.turns.forward(
        key, msg,
        // The turn id names the turn's frame topic: one turn, one id, whatever the attempts.
        (turn) => this.forwarder.ask<WireTurnAnswer>(shard, { id: turn.turn, k: kind, key, t: timeoutMs, turn } satisfies WireAsk, deadline, abandon, resent),
        (turn, reason) => {
          const body: WireAsk = { id: randomUUID(), k: kind, key, cancel: { turn, reason: reason && { code: reason.code, message: reason.message, details: reason.details } } };
          this.forwarder.ask(shard, body, 5000).catch((e) => this.opts.log.warn({ err: e, nft: key }, 'forwarding a turn cancel failed'));
        },
      );
      return handle as R;
    }
    const reply = await this.forwarder.ask<unknown>(shard, { id, k: kind, key, m: msg, t: timeoutMs } satisfies WireAsk, deadline, abandon, resent);
    // A clear answers a handle whose promise the owner already awaited: give the same shape back.
    if (kind === AGENT_ACTOR && msg.type === 'clear') return { done: Promise.resolve(reply as number) } satisfies ClearHandle as R;
    return reply as R;
  }

  tell(kind: string, key: string, msg: unknown): void {
    const shard = this.shardFor(kind, key);
    if (shard === undefined || this.owns(shard)) return this.opts.local.tell(kind, key, msg);
    this.stats.forwarded++;
    this.forwarder.ask(shard, { id: randomUUID(), k: kind, key, m: msg, tell: 1 } satisfies WireAsk, this.timeoutMs, () => this.owns(shard)).catch((e) => {
      if (e instanceof ForwardAbandoned) return this.opts.local.tell(kind, key, msg);
      this.opts.log.warn({ err: e, actor: kind, key }, 'a forwarded tell was not delivered');
    });
  }

  /** Serves a shard this node now holds the lease of (the owner half of forwarding). */
  serveShard(shard: number): void {
    this.forwarder.serve(shard, (body) => this.handle(shard, body as WireAsk));
  }

  /**
   * Stops serving a shard: call it as soon as this node stops trusting the lease (its
   * trustedUntil passed, a renewal lost it, or before releasing it), which is before any other
   * node can claim it. For a moment the subscription stays and answers NOT_OWNER, so an ask that
   * reached it while it was going is retried at once rather than lost (dropped by a closed
   * subscription, it waited out a whole attempt). NATS hands a request to EVERY subscriber of a
   * subject and takes the first reply, so this NOT_OWNER can beat the new owner's answer to the
   * same request: the asker then sends it again with the same ask id, and the new owner answers
   * that repeat with its first reply (Forwarder) instead of running it twice.
   */
  unserveShard(shard: number): void {
    this.forwarder.unserve(shard);
  }

  /** The owner side of one forwarded ask. Undefined means NOT_OWNER: the asker retries. */
  private async handle(shard: number, w: WireAsk): Promise<{ value: unknown } | undefined> {
    if (!this.owns(shard)) {
      // Not trusted now: NOT_OWNER, and the asker retries. The subscription stays: only the lease
      // loop serves and unserves (its watchdog drops a lapsed lease within a quarter renewal).
      // Unserving here stranded the shard when a late renewal restored the trust with no drop:
      // the loop never served it again, and every forward to it waited out its deadline.
      this.stats.notOwner++;
      return undefined;
    }
    if (typeof w?.k !== 'string' || typeof w.key !== 'string' || !this.sharded.has(w.k) || shardOf(w.key, this.shards) !== shard) {
      throw new ApiError('INVALID_REQUEST', 'malformed forwarded message');
    }
    this.stats.served++;
    const local = this.opts.local;
    const t = typeof w.t === 'number' && w.t > 0 ? w.t : this.timeoutMs;
    if (w.cancel) return { value: this.turns.cancel(w.cancel.turn, w.cancel.reason) };
    if (w.turn) {
      if (w.k !== AGENT_ACTOR) throw new ApiError('INVALID_REQUEST', 'malformed forwarded message');
      return { value: await this.turns.serve(local, w.key, w.turn, t, w.again === 1) };
    }
    if (w.tell) {
      local.tell(w.k, w.key, w.m);
      return { value: null };
    }
    const m = w.m as AgentMsg;
    if (w.k === AGENT_ACTOR && m?.type === 'turn') throw new ApiError('INVALID_REQUEST', 'a turn is forwarded as a turn');
    let value: unknown;
    try {
      value = await local.ask<unknown>(w.k, w.key, m, t);
    } catch (e) {
      // Fenced or evicted here: nothing was done; the asker retries at the new owner.
      if (isNotOwner(e)) return undefined;
      throw e;
    }
    if (w.k === AGENT_ACTOR && m?.type === 'clear') return { value: await (value as ClearHandle).done };
    return { value };
  }

  /** Stops serving and ends the turns streamed to this node (they resolve incomplete). */
  close(): void {
    this.forwarder.close();
    this.turns.close();
  }
}


/** A turn that may already have run on an earlier owner (AgentBehaviour looks its id up first). */
function asResent(msg: unknown, turnId: string | undefined): unknown {
  return turnId ? { ...(msg as TurnMsg), turnId, resent: true } : msg;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
