import { openPg, migratePg, MIGRATION_LOCK, type Sql } from '../db/pg.js';
import type { Fence } from '../db/fence.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { natsLinkOptions } from './nats-url.js';
import type { ClusterConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { ShardLeases, FencedError, LEASE_SCHEMA, LEASE_CLAIMED_AT, trustMarginMs } from './shard-leases.js';
import { authenticatedLink, type MacStats } from './cluster-mac.js';
import { Forwarder } from './forwarder.js';

/** How long a planned handoff waits for a shard's running turns before it stops them. */
const DRAIN_MS = 10_000;
/**
 * A rebalance (a node joined) moves a shard when nothing of it is running (hooks.movable), and
 * waits for that up to this long, then drains it anyway: a turn is cut by a rebalance only if
 * it runs past this wait plus DRAIN_MS. Not longer: under a steady load a shard may never be idle,
 * and the cluster must still balance (the fault suite allows 30 s). SIGTERM drains DRAIN_MS.
 */
const REBALANCE_WAIT_MS = 10_000;
import { SHARDS, shardOf, preferredOwner } from './shards.js';

export type { Fence };

/** Why a shard stops being served here. */
export type ShardLoss =
  /** renewal found another owner or an expired row: passivate at once, write nothing more */
  | 'lost'
  /** the lease's trust window passed without a renewal (database unreachable, node paused) */
  | 'expired'
  /** a write was refused by the fence */
  | 'fenced'
  /** rebalancing: a node that hashes higher for the shard joined; drained, then released */
  | 'handoff'
  /** SIGTERM: drained, then released */
  | 'shutdown';

/** What the composition plugs into the node: run a shard's actors, stop them. */
export interface ShardHooks {
  /** The shard is ours at `epoch`: serve its subject, run recovery for its deployments. */
  gained(shard: number, epoch: number): void;
  /** The shard is no longer served here. For 'lost'/'expired'/'fenced' its actors stop at once. */
  lost(shard: number, why: ShardLoss): void;
  /** Handoff/shutdown: resolves once the shard's actors are idle and stopped (bounded by timeoutMs). */
  drain(shard: number, timeoutMs: number): Promise<void>;
  /** Nothing of the shard's would be cut by moving it now (no turn streaming, no provider work in flight). */
  movable?(shard: number): boolean;
}

/**
 * The lease view the cluster directory (17a) routes by: where a shard's asks go, and the fence
 * an owned actor passes to its store writes.
 */
export interface LeaseView {
  readonly nodeId: string;
  /** This node serves the shard now: trusted lease, not draining. Ask the local registry. */
  serves(shard: number): boolean;
  /** The same as an epoch (17a's ClusterDirectory LeaseView): undefined when not served here. */
  ownedEpoch(shard: number): number | undefined;
  /** The fence for an NFT's writes; throws FencedError when this node does not hold its shard. */
  fenceFor(nft: string): Fence;
}

export interface ClusterStats {
  claims: number;
  renewals: number;
  renewFailures: number;
  lost: number;
  expired: number;
  handoffs: number;
  fencingRefusals: number;
}

/** Node membership lives next to the leases (17b's migration 8 creates the same table). */
const NODES_SCHEMA = `
CREATE TABLE IF NOT EXISTS nodes (
  id          text PRIMARY KEY,
  address     text,
  started_at  timestamptz NOT NULL DEFAULT now(),
  seen_at     timestamptz NOT NULL DEFAULT now(),
  left_at     timestamptz
);`;

/**
 * One cluster node (shared/reference/cluster.md, "Single activation"): the PostgreSQL pool, the
 * NATS connection, the node id, membership and the lease loop.
 *
 * Membership is a heartbeat row per node in PostgreSQL (`nodes.seen_at`), not NATS heartbeats:
 * a node is only useful as an owner if it can renew leases, i.e. reach PostgreSQL, and expiry
 * of both then runs on the one clock (the database's). A node cut off from PostgreSQL but still
 * on NATS would look alive to NATS heartbeats and attract shards it cannot claim.
 *
 * Every `renewMs` (1 s by default) the loop: heartbeats and reads the live nodes; renews every
 * held shard in one statement (a shard that did not renew is passivated at once); claims the
 * shards rendezvous hashing gives this node among the live nodes, and shards nobody has claimed
 * for two ticks (their preferred owner is not taking them); hands off at most `rebalanceBatch`
 * shards that now hash to another live node (stop serving, drain, release at the held epoch:
 * the new owner claims on its next tick and runs recovery). Between ticks a watchdog passivates
 * any shard whose trust window (ShardLeases: sent_at + ttl - margin) has passed.
 */
export class ClusterNode implements LeaseView {
  readonly nodeId: string;
  readonly sql: Sql;
  readonly leases: ShardLeases;
  nc!: NatsConnection;
  forwarder!: Forwarder;
  readonly stats: ClusterStats = { claims: 0, renewals: 0, renewFailures: 0, lost: 0, expired: 0, handoffs: 0, fencingRefusals: 0 };
  /** live node ids at the last heartbeat, sorted */
  liveNodes: string[] = [];
  pgUp = false;
  natsStatus: 'connected' | 'reconnecting' | 'disconnected' | 'closed' = 'disconnected';
  /** monotonic ms since which the NATS link has been down; undefined while it is up */
  private natsDownSince: number | undefined;
  /** this node stood aside (NATS down): out of the live set, holding no shard, until NATS is back */
  private asideForNats = false;

  private hooks: ShardHooks | undefined;
  /** shards served here (gained and not yet lost) */
  private readonly active = new Set<number>();
  private readonly draining = new Set<number>();
  /** monotonic time a shard was first seen free while this node did not prefer it */
  private readonly freeSince = new Map<number, number>();
  /** shards to hand off to their preferred owner, since when (waiting for them to be movable) */
  private readonly handSince = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopping = false;
  private stopped = false;
  private handingOff: Promise<void> | undefined;

  constructor(readonly config: ClusterConfig, private readonly log: Logger, sql?: Sql) {
    this.nodeId = config.nodeId;
    this.sql = sql ?? openPg(config.databaseUrl);
    this.leases = new ShardLeases(this.sql, this.nodeId, config.leaseTtlMs, trustMarginMs(config.leaseTtlMs));
  }

  /** Messages signed and dropped by this node's authenticated link (cluster-mac.ts); undefined without a cluster secret. */
  get macStats(): MacStats | undefined {
    return (this.nc as (NatsConnection & { macStats?: MacStats }) | undefined)?.macStats;
  }

  /** Connects to PostgreSQL (creating the lease and membership tables if needed) and NATS. */
  async connect(): Promise<void> {
    // The whole schema (migration 8 holds shard_leases and nodes), each step under the advisory
    // lock, so nodes starting together apply it once; the bootstrap after it is a no-op then.
    try {
      await migratePg(this.sql);
      await this.sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
        await tx.unsafe(LEASE_SCHEMA + LEASE_CLAIMED_AT + NODES_SCHEMA);
      });
    } catch (e) {
      throw new Error(`cluster mode: cannot use PostgreSQL at PANTHERS_DATABASE_URL (${(e as Error).message})`, { cause: e });
    }
    this.pgUp = true;
    // Loaded here, in cluster mode only: a single process's start does not pay for it (~14 ms CPU).
    const { connect } = await import('@nats-io/transport-node');
    const raw = await connect({
      // Credentials in the URL (user:pass@ or token@) become the client's options: it ignores them there.
      ...natsLinkOptions(this.config.natsUrl),
      name: `panthers-${this.nodeId}`,
      // A node does not receive its own frames, invalidations and revocations back.
      noEcho: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    }).catch((e: Error) => {
      throw new Error(`cluster mode: cannot reach NATS at PANTHERS_NATS_URL (${e.message})`, { cause: e });
    });
    // Every message between nodes is authenticated under PANTHERS_CLUSTER_SECRET (cluster-mac.ts):
    // a NATS client without it can neither act as a node nor answer one.
    this.nc = this.config.clusterSecret !== undefined ? authenticatedLink(raw, this.config.clusterSecret) : raw;
    this.natsStatus = 'connected';
    void this.watchNats();
    this.forwarder = new Forwarder(this.nc);
  }

  private async watchNats(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.natsStatus = 'disconnected';
      else if (s.type === 'reconnecting') this.natsStatus = 'reconnecting';
      else if (s.type === 'reconnect') this.natsStatus = 'connected';
      if (this.natsStatus === 'connected') this.natsDownSince = undefined;
      else this.natsDownSince ??= performance.now();
      if (s.type === 'disconnect' || s.type === 'reconnect') this.log.warn({ nats: s.type, node: this.nodeId }, 'NATS link changed');
    }
    this.natsStatus = 'closed';
  }

  /** Joins the cluster: first heartbeat and claims now, then the loop. */
  async start(hooks: ShardHooks): Promise<void> {
    this.hooks = hooks;
    await this.sql`INSERT INTO nodes (id, started_at, seen_at, left_at) VALUES (${this.nodeId}, now(), now(), NULL)
      ON CONFLICT (id) DO UPDATE SET started_at = now(), seen_at = now(), left_at = NULL`;
    await this.tick();
    this.timer = setInterval(() => void this.tickOnce(), this.config.renewMs);
    this.timer.unref();
    this.watchdog = setInterval(() => this.checkTrust(), Math.max(25, Math.floor(this.config.renewMs / 4)));
    this.watchdog.unref();
    this.log.info({ node: this.nodeId, shards: this.active.size, nodes: this.liveNodes.length }, 'cluster node joined');
  }

  // --- the lease view -------------------------------------------------------------------

  serves(shard: number): boolean {
    return this.active.has(shard) && !this.draining.has(shard) && this.leases.lease(shard) !== undefined;
  }

  ownedEpoch(shard: number): number | undefined {
    if (!this.active.has(shard) || this.draining.has(shard)) return undefined;
    return this.leases.lease(shard)?.epoch;
  }

  fenceFor(nft: string): Fence {
    const shard = shardOf(nft);
    const l = this.leases.lease(shard);
    if (!l || !this.active.has(shard)) {
      this.stats.fencingRefusals++;
      throw new FencedError(shard, l?.epoch ?? -1);
    }
    return { shard, epoch: l.epoch, node: this.nodeId };
  }

  /** A store refused a write at a stale epoch: this node no longer owns the shard. */
  reportFenced(e: FencedError): void {
    this.stats.fencingRefusals++;
    if (this.active.has(e.shard)) this.drop(e.shard, 'fenced');
  }

  /** Shards served here, with their epochs (for /health and /metrics). */
  owned(): { shard: number; epoch: number }[] {
    const out: { shard: number; epoch: number }[] = [];
    for (const s of [...this.active].sort((a, b) => a - b)) {
      const l = this.leases.lease(s);
      if (l) out.push({ shard: s, epoch: l.epoch });
    }
    return out;
  }

  // --- the loop ---------------------------------------------------------------------------

  private tickOnce(): void {
    if (this.ticking || this.stopping) return;
    this.ticking = this.tick().finally(() => (this.ticking = undefined));
  }

  private async tick(): Promise<void> {
    const ttl = this.config.leaseTtlMs;
    // (Alone in the cluster, it keeps its shards: nobody else could serve them.)
    if (this.natsDownSince !== undefined && performance.now() - this.natsDownSince >= 2 * this.config.renewMs && this.liveNodes.some((n) => n !== this.nodeId)) {
      return this.standAside();
    }
    if (this.asideForNats) {
      this.asideForNats = false;
      this.log.warn({ node: this.nodeId }, 'NATS is back: rejoining the live set');
    }
    try {
      // Heartbeat, renewal and the lease table in one round trip each, sent together.
      const [live, lost, rows] = await Promise.all([
        this.sql<{ id: string }[]>`
          WITH hb AS (
            UPDATE nodes SET seen_at = now(), left_at = NULL WHERE id = ${this.nodeId} RETURNING id
          )
          SELECT id FROM nodes WHERE left_at IS NULL AND seen_at > now() - ${ttl} * interval '1 millisecond' AND id <> ${this.nodeId}
          UNION SELECT id FROM hb`,
        this.leases.renew(),
        this.sql<{ shard: number; owner: string | null; free: boolean }[]>`
          SELECT shard, owner, (owner IS NULL OR expires_at < now()) AS free FROM shard_leases`,
      ]);
      this.pgUp = true;
      this.stats.renewals++;
      this.liveNodes = live.map((r) => r.id).sort();
      if (!this.liveNodes.includes(this.nodeId)) this.liveNodes = [...this.liveNodes, this.nodeId].sort();
      for (const s of lost) {
        this.stats.lost++;
        this.drop(s, 'lost');
      }
      if (this.stopping) return;
      await this.claimAndRebalance(rows);
    } catch (e) {
      this.pgUp = false;
      this.stats.renewFailures++;
      this.log.warn({ err: e, node: this.nodeId }, 'lease renewal failed; shards stop when their trust window ends');
    }
  }

  /**
   * The NATS link is down (for two renewal periods): no forwarded request, frame or invalidation
   * reaches this node, so its shards would answer nobody while it kept renewing them. It leaves the
   * live set (the others stop preferring it) and releases every shard at its epoch, so the others
   * claim them on their next tick instead of waiting for a lease that never expires. Its actors stop
   * at once (their writes would be fenced after the release anyway). Back on NATS, the next tick's
   * heartbeat rejoins and rebalancing hands shards back.
   */
  private async standAside(): Promise<void> {
    if (!this.asideForNats) {
      this.asideForNats = true;
      this.log.warn({ node: this.nodeId, shards: this.active.size }, 'NATS link down: releasing every shard and leaving the live set until it is back');
    }
    try {
      await this.sql`UPDATE nodes SET left_at = now() WHERE id = ${this.nodeId}`;
      this.pgUp = true;
      for (const s of [...this.active]) this.drop(s, 'lost');
      await this.leases.releaseAll();
    } catch (e) {
      this.pgUp = false;
      this.log.warn({ err: e, node: this.nodeId }, 'standing aside failed; shards stop when their trust window ends');
    }
  }

  private async claimAndRebalance(rows: { shard: number; owner: string | null; free: boolean }[]): Promise<void> {
    const now = performance.now();
    const orphanAfter = 2 * this.config.renewMs;
    const toClaim: number[] = [];
    const toHand: number[] = [];
    for (const r of rows) {
      if (r.shard >= SHARDS) continue;
      const preferred = preferredOwner(r.shard, this.liveNodes);
      const held = this.leases.lease(r.shard) !== undefined;
      if (held && !this.active.has(r.shard) && !this.draining.has(r.shard)) {
        // Renewed after its trust had lapsed (a stalled loop, or the database back in time): its
        // actors were stopped, yet what they had in flight can still write, and at the held epoch
        // the fence would let it. Claimed again (epoch + 1) before it is served: those writes are
        // refused, and the new activation never runs beside the old one (a soak found a stopped
        // turn's reply stored between the next turn's message and its reply).
        toClaim.push(r.shard);
        continue;
      }
      const mine = this.active.has(r.shard) || held;
      if (r.free && !mine) {
        if (preferred === this.nodeId) toClaim.push(r.shard);
        else {
          // Its preferred owner had two ticks to take it and did not: take it (rebalanced later).
          const since = this.freeSince.get(r.shard);
          if (since === undefined) this.freeSince.set(r.shard, now);
          else if (now - since >= orphanAfter) toClaim.push(r.shard);
        }
        continue;
      }
      this.freeSince.delete(r.shard);
      if (mine && preferred !== this.nodeId && this.active.has(r.shard) && !this.draining.has(r.shard)) {
        const since = this.handSince.get(r.shard) ?? now;
        this.handSince.set(r.shard, since);
        if (this.hooks?.movable?.(r.shard) !== false || now - since >= REBALANCE_WAIT_MS) toHand.push(r.shard);
      } else this.handSince.delete(r.shard);
    }
    const claimed = await Promise.all(toClaim.map((s) => this.leases.claim(s).catch(() => undefined)));
    for (const l of claimed) {
      if (!l) continue;
      this.stats.claims++;
      this.freeSince.delete(l.shard);
      this.gain(l.shard, l.epoch);
    }
    // A few at a time, and only while no other handoff of ours is still draining.
    const room = this.config.rebalanceBatch - this.draining.size;
    for (const s of toHand.slice(0, Math.max(0, room))) {
      this.handSince.delete(s);
      void this.handOff(s, 'handoff');
    }
  }

  private gain(shard: number, epoch: number): void {
    if (this.active.has(shard)) return;
    this.active.add(shard);
    try {
      this.hooks?.gained(shard, epoch);
    } catch (e) {
      this.log.error({ err: e, shard }, 'starting a shard failed');
    }
  }

  /** Stops serving a shard at once (its lease is gone or untrusted). */
  private drop(shard: number, why: ShardLoss): void {
    if (!this.active.delete(shard)) return;
    this.draining.delete(shard);
    if (why === 'expired') this.stats.expired++;
    this.log.warn({ node: this.nodeId, shard, why }, 'shard passivated');
    try {
      this.hooks?.lost(shard, why);
    } catch (e) {
      this.log.error({ err: e, shard }, 'passivating a shard failed');
    }
  }

  /** Planned: stop serving, drain the shard's actors, release at the held epoch. */
  private async handOff(shard: number, why: 'handoff' | 'shutdown'): Promise<void> {
    if (!this.active.has(shard) || this.draining.has(shard)) return;
    this.draining.add(shard);
    try {
      this.hooks?.lost(shard, why);
      // The lease is still renewed while the shard drains (the loop, or handOffAll's renewer), so a
      // turn in flight may finish here rather than be cut: a planned handoff is no client error.
      await this.hooks?.drain(shard, Math.max(DRAIN_MS, this.config.leaseTtlMs - 1000));
    } catch (e) {
      this.log.error({ err: e, shard }, 'draining a shard failed');
    }
    this.active.delete(shard);
    this.draining.delete(shard);
    try {
      await this.leases.release(shard);
      if (why === 'handoff') this.stats.handoffs++;
    } catch (e) {
      // Unreleased, it expires at the database's clock; the new owner claims it then.
      this.log.warn({ err: e, shard }, 'release failed; the lease will expire');
    }
  }

  private checkTrust(): void {
    for (const s of [...this.active]) if (!this.draining.has(s) && this.leases.lease(s) === undefined) this.drop(s, 'expired');
  }

  // --- leaving ----------------------------------------------------------------------------

  /** True from SIGTERM on: /health answers 503 so the proxy sends new requests to other nodes. */
  get leaving(): boolean {
    return this.stopping;
  }

  /**
   * SIGTERM, first half (before the process aborts anything): stop claiming, keep renewing what is
   * held, drain every shard (turns in flight finish; new asks go to the shard's next owner, retried
   * until it claims) and release them. The links stay up for the rest of the shutdown.
   */
  async handOffAll(): Promise<void> {
    if (this.handingOff) return this.handingOff;
    this.stopping = true;
    this.handingOff = (async () => {
      clearInterval(this.timer);
      clearInterval(this.watchdog);
      await this.ticking?.catch(() => {});
      // Out of the membership first: the others stop placing shards here, so each shard released
      // below goes straight to its next preferred owner (one move, claimed on that node's next
      // tick) rather than waiting two ticks as an orphan and moving again once this node is gone.
      await this.sql`UPDATE nodes SET left_at = now() WHERE id = ${this.nodeId}`.catch(() => {});
      const renewer = setInterval(() => void this.leases.renew().catch(() => {}), this.config.renewMs);
      try {
        // Drain all at once (handoffs already draining finish on their own).
        const shards = [...this.active].filter((s) => !this.draining.has(s));
        await Promise.all(shards.map((s) => this.handOff(s, 'shutdown')));
        while (this.draining.size > 0) await new Promise((r) => setTimeout(r, 20));
      } finally {
        clearInterval(renewer);
      }
      await this.leases.releaseAll().catch(() => {});
    })();
    return this.handingOff;
  }

  /** SIGTERM: hand off every shard (if not done yet), leave the membership, close links. */
  async stop(beforeLinksClose?: () => void): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.handOffAll();
    await this.sql`UPDATE nodes SET left_at = now() WHERE id = ${this.nodeId}`.catch(() => {});
    this.log.info({ node: this.nodeId }, 'cluster node left; shards released');
    beforeLinksClose?.();
    this.forwarder?.close();
    await this.nc?.drain().catch(() => {});
    await this.sql.end({ timeout: 2 }).catch(() => {});
  }
}
