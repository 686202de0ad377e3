import type { ClusterConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Publisher, TopicHooks } from '../server/ws-server.js';
import type { RateLimiter } from '../guards/rate-limiter.js';
import type { ActorDirectory, LocalActors } from '../contracts/actor-directory.js';
import { DEPLOYMENT_ACTOR } from '../contracts/deployment-messages.js';
import { AGENT_ACTOR } from '../contracts/agent-messages.js';
import { ClusterDirectory } from './cluster-directory.js';
import { openPgStorage, type Storage } from '../db/storage.js';
import { openPg, pgUnreachable } from '../db/pg.js';
import { causeChain, type CauseLink } from '../errors.js';
import { ClusterNode, type Fence, type ShardLoss } from './cluster-node.js';
import { ClusterPublisher } from './cluster-publisher.js';
import { NatsInvalidations, LocalInvalidations, type Invalidations } from './invalidations.js';
import { NatsRevocations, LocalRevocations, type Revocations } from './revocations.js';
import { RateSync } from './rate-sync.js';
import { FencedError } from './shard-leases.js';
import { shardOf } from './shards.js';
import { registerClusterMetrics } from './cluster-metrics.js';

/** The actor kinds keyed by NFT, hence by shard: they run only on the shard's lease holder. */
export const SHARDED_KINDS = [DEPLOYMENT_ACTOR, AGENT_ACTOR] as const;

/** What the node needs of this process's registry (actors/registry.ts ActorRegistry is one). */
export interface ShardActors extends LocalActors {
  /** keys of the live actors of a kind */
  liveKeys(kind: string): string[];
  /** stops an actor now, busy or not, refusing what waits for it */
  evict(kind: string, key: string): void;
  /** stopping it now cuts nothing (nothing queued, no work a move would lose) */
  movable(kind: string, key: string): boolean;
  events: { onCrash?(kind: string, key: string, err: unknown): void; onPassivate?(kind: string, key: string): void };
}

/**
 * What features see of the cluster (AppContext.cluster): undefined in one process.
 * Features that run sharded actors recover a shard's work when this node gains it.
 */
export interface ClusterContext {
  readonly nodeId: string;
  /** Shards gained since the last call, batched per event-loop turn (recovery scans once). */
  onShardsGained(fn: (shards: ReadonlySet<number>) => void): void;
  /** A shard this node stopped serving (lost, handed off, released): drop what is kept of its NFTs. */
  onShardLost(fn: (shard: number) => void): void;
  fenceFor(nft: string): Fence;
  /** This node serves the shard now (its actors run here). */
  serves(shard: number): boolean;
  /** A store refused a write at a stale epoch: passivate that shard here. */
  reportFenced(e: FencedError): void;
}

/** The owner half of forwarding: serves a shard's NATS subject while this node holds it (17a's ClusterDirectory). */
export interface ShardServer {
  serveShard(shard: number): void;
  unserveShard(shard: number): void;
}

/** What /health shows of this node. */
export interface ClusterHealth {
  node_id: string;
  nodes_live: string[];
  shards_owned: number;
  leases: { shard: number; epoch: number }[];
  postgres: 'up' | 'down';
  nats: string;
  forwards: { asked: number; served: number; retried: number; failed: number };
  fencing_refusals: number;
}

/**
 * The cluster half of the composition (src/app.ts calls it when PANTHERS_DATABASE_URL and
 * PANTHERS_NATS_URL are set): the node with its PostgreSQL pool, NATS link and lease loop; the
 * cross-node Publisher around the WS server's; invalidations, revocations and rate-limit sync on
 * NATS; and the shard hooks that run and stop a shard's actors.
 *
 * The stores come from `openStorage` (every store on PostgreSQL).
 * The directory (17a's ClusterDirectory over this node's lease view) comes from `directoryFor`.
 */
export class ClusterApp {
  readonly publisher: ClusterPublisher;
  readonly invalidations: NatsInvalidations;
  readonly revocations: NatsRevocations;
  readonly rateSync: RateSync | undefined;
  readonly context: ClusterContext;
  private readonly gainedListeners: ((shards: ReadonlySet<number>) => void)[] = [];
  private readonly lostListeners: ((shard: number) => void)[] = [];
  private pendingGained = new Set<number>();
  private actors: ShardActors | undefined;
  private directory: ClusterDirectory | undefined;
  private server: ShardServer | undefined;
  private readonly clusterSecret: string | undefined;

  private constructor(readonly node: ClusterNode, private readonly log: Logger, local: Publisher, rateLimiter: RateLimiter | undefined, config: ClusterConfig) {
    const nc = node.nc;
    this.clusterSecret = config.clusterSecret;
    this.invalidations = new NatsInvalidations(nc);
    this.revocations = new NatsRevocations(nc);
    this.publisher = new ClusterPublisher(nc, local, (nft) => this.invalidations.local('deployment', nft));
    this.rateSync = rateLimiter ? new RateSync(nc, rateLimiter, config.rateSyncMs) : undefined;
    this.context = {
      nodeId: node.nodeId,
      onShardsGained: (fn) => void this.gainedListeners.push(fn),
      onShardLost: (fn) => void this.lostListeners.push(fn),
      fenceFor: (nft) => node.fenceFor(nft),
      serves: (shard) => node.serves(shard),
      reportFenced: (e) => node.reportFenced(e),
    };
  }

  static async open(config: ClusterConfig, log: Logger, local: Publisher, rateLimiter: RateLimiter | undefined, metrics: Metrics): Promise<ClusterApp> {
    // The secret seals the shared signing keys and authenticates every NATS message (cluster-mac.ts).
    if (config.clusterSecret === undefined) throw new Error('PANTHERS_CLUSTER_SECRET is required in cluster mode: it seals the shared signing keys and authenticates messages between nodes (docs/cluster.md)');
    const node = await connectNode(config, log);
    const app = new ClusterApp(node, log, local, rateLimiter, config);
    registerClusterMetrics(metrics, app);
    return app;
  }

  /** The WS server reports followed topics here: chat topics are followed on NATS meanwhile. */
  get topicHooks(): TopicHooks {
    return this.publisher;
  }

  /**
   * The stores on PostgreSQL (17b's and 17c's), on the node's pool (closed by the node), with NATS
   * invalidations for their synchronous caches. The provider-secrets key file stays in the data
   * dir; the JWT signing key and the agent-credential key are shared rows sealed under
   * PANTHERS_CLUSTER_SECRET.
   */
  openStorage(dataDir: string): Storage {
    return openPgStorage(this.node.sql, { dataDir, clusterSecret: this.clusterSecret, invalidations: this.invalidations, log: this.log });
  }

  /** What serves the shard subjects the lease loop gains (directoryFor sets the directory); before start(). */
  useShardServer(server: ShardServer): void {
    this.server = server;
  }

  /**
   * The ActorDirectory requests use in cluster mode (17a): local asks for shards this node serves,
   * NATS requests to the owner otherwise; it serves this node's shard subjects from now on.
   */
  directoryFor(local: LocalActors, localPublish: (topic: string, frame: string) => void): ActorDirectory {
    const d = new ClusterDirectory({ local, leases: this.node, nc: this.node.nc, log: this.log, localPublish, shardedKinds: SHARDED_KINDS, forwarder: this.node.forwarder });
    this.directory = d;
    this.useShardServer(d);
    return d;
  }

  /** Joins: claims shards and starts serving them (after the features registered their actor kinds). */
  async start(actors: ShardActors): Promise<void> {
    if (!this.server) throw new Error('ClusterApp.start: call directoryFor() first (it serves the shard subjects)');
    this.actors = actors;
    // A write refused by the fence crashes the actor (it is not an ApiError): passivate its shard.
    const prev = actors.events.onCrash;
    actors.events = {
      ...actors.events,
      onCrash: (kind, key, err) => {
        prev?.(kind, key, err);
        if (err instanceof FencedError || (err as Error | undefined)?.name === 'FencedError') this.node.reportFenced(err as FencedError);
      },
    };
    await this.node.start({
      gained: (shard) => this.gained(shard),
      lost: (shard, why) => this.lost(shard, why),
      drain: (shard, timeoutMs) => this.drain(shard, timeoutMs),
      movable: (shard) => this.keysOf(shard).every(([kind, key]) => this.actors?.movable(kind, key) !== false),
    });
  }

  private gained(shard: number): void {
    this.server!.serveShard(shard);
    if (this.pendingGained.size === 0) {
      setImmediate(() => {
        const shards = this.pendingGained;
        this.pendingGained = new Set();
        for (const fn of this.gainedListeners) {
          try {
            fn(shards);
          } catch (e) {
            this.log.error({ err: e }, 'shard recovery failed');
          }
        }
      });
    }
    this.pendingGained.add(shard);
  }

  private keysOf(shard: number): [string, string][] {
    const out: [string, string][] = [];
    for (const kind of SHARDED_KINDS) for (const key of this.actors?.liveKeys(kind) ?? []) if (shardOf(key) === shard) out.push([kind, key]);
    return out;
  }

  private lost(shard: number, why: ShardLoss): void {
    this.pendingGained.delete(shard);
    this.server!.unserveShard(shard);
    for (const fn of this.lostListeners) {
      try {
        fn(shard);
      } catch (e) {
        this.log.error({ err: e, shard }, 'a shard-lost listener failed');
      }
    }
    const actors = this.actors;
    if (!actors) return;
    const planned = why === 'handoff' || why === 'shutdown';
    for (const [kind, key] of this.keysOf(shard)) {
      if (planned) {
        // Turns in flight finish (the lease is renewed meanwhile; their writes are fenced at the
        // held epoch), then the actor stops once idle: a planned handoff cuts no reply.
        actors.passivate(kind, key);
      } else {
        // The lease is gone: not one more step here (the new owner rebuilds it from the store).
        actors.evict(kind, key);
      }
    }
  }

  private async drain(shard: number, timeoutMs: number): Promise<void> {
    const until = performance.now() + timeoutMs;
    while (this.keysOf(shard).length > 0 && performance.now() < until) {
      // What a move cuts nothing of stops now; the rest (turns streaming, queued messages,
      // provider work in flight) is waited for. A running deployment's actor is always busy (its
      // health checks): waiting for it held every such shard for the whole drain bound, its asks
      // with it, and then cut whatever else was running.
      for (const [kind, key] of this.keysOf(shard)) {
        if (this.actors?.movable(kind, key)) this.actors.evict(kind, key);
        else this.actors?.passivate(kind, key);
      }
      if (this.keysOf(shard).length === 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const left = this.keysOf(shard);
    if (left.length) this.log.warn({ shard, actors: left.length }, 'drain timed out: stopping the rest');
    for (const [kind, key] of left) this.actors?.evict(kind, key);
  }

  health(): ClusterHealth {
    const n = this.node;
    const leases = n.owned();
    const f = n.forwarder?.stats ?? { asked: 0, served: 0, retried: 0, failed: 0 };
    return {
      node_id: n.nodeId,
      nodes_live: n.liveNodes,
      shards_owned: leases.length,
      leases,
      postgres: n.pgUp ? 'up' : 'down',
      nats: n.natsStatus,
      forwards: { asked: f.asked, served: f.served, retried: f.retried, failed: f.failed },
      fencing_refusals: n.stats.fencingRefusals,
    };
  }

  /** /health answers 503 while this node cannot do its part (no PostgreSQL or no NATS). */
  healthy(): boolean {
    return !this.node.leaving && this.node.pgUp && this.node.natsStatus === 'connected';
  }

  /** SIGTERM, first: every shard drained (running turns finish) and released; links stay up. */
  handOff(): Promise<void> {
    return this.node.handOffAll();
  }

  /** SIGTERM, after the actors drained: frames out, leases released, links closed. */
  async stop(): Promise<void> {
    this.publisher.close();
    this.rateSync?.close();
    this.invalidations.close();
    this.revocations.close();
    // Releases the shards (unserving each through the directory), then the directory goes.
    await this.node.stop(() => this.directory?.close());
  }
}

/** Start-up retries: the first waits START_BACKOFF_MS, each next one twice as long, up to START_BACKOFF_MAX_MS (jittered). */
const START_BACKOFF_MS = 200;
const START_BACKOFF_MAX_MS = 5000;
/** One connect attempt waits at most this long for PostgreSQL (porsager's default is 30 s: longer than a whole start budget). */
const PG_CONNECT_TIMEOUT_SEC = 10;
/** One whole attempt (both links, the schema) is given up after this long, within the budget. */
const ATTEMPT_MS = 30_000;

/**
 * A node whose PostgreSQL and NATS links are up (schema migrated). A link that is briefly
 * unreachable or resetting at start (the database restarting, a node restarted just as its link
 * came back) is retried with capped, jittered backoff for up to `startTimeoutMs`, each attempt
 * logged; a configuration error (a wrong password, an unknown database or host, a NATS
 * authorization failure) ends the start at once. Each attempt builds a fresh pool and NATS
 * client, and a failed attempt closes both, so nothing of it outlives the start (a pool that
 * saw a reset is not reused: porsager's client can stay stuck after one).
 */
async function connectNode(config: ClusterConfig, log: Logger): Promise<ClusterNode> {
  const budgetMs = config.startTimeoutMs ?? 60_000;
  const t0 = performance.now();
  for (let attempt = 1; ; attempt++) {
    const node = new ClusterNode(config, log, openPg(config.databaseUrl, { connectTimeoutSec: PG_CONNECT_TIMEOUT_SEC }));
    const connecting = node.connect();
    let timer: NodeJS.Timeout | undefined;
    // A link that accepts and then answers nothing (a stalled proxy) must not hold the start forever.
    const attemptMs = Math.max(1000, Math.min(ATTEMPT_MS, budgetMs - (performance.now() - t0)));
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`cluster mode: no answer from ${node.pgUp ? 'NATS' : 'PostgreSQL'} within ${Math.round(attemptMs / 1000)} s`), { code: 'ETIMEDOUT' })), attemptMs);
    });
    try {
      await Promise.race([connecting, stalled]);
      clearTimeout(timer);
      if (attempt > 1) log.info({ node: node.nodeId, attempts: attempt, ms: Math.round(performance.now() - t0) }, 'cluster links up');
      return node;
    } catch (e) {
      clearTimeout(timer);
      await node.sql.end({ timeout: 0 }).catch(() => {});
      await node.nc?.close().catch(() => {});
      // An attempt given up on may still open its NATS client later: close it then.
      void connecting.then(() => node.nc?.close(), () => undefined).catch(() => undefined);
      // connect() reaches PostgreSQL first: pgUp says which link failed.
      const link = node.pgUp ? 'nats' : 'postgres';
      const unreachable = link === 'postgres' ? pgUnreachable(e) : natsUnreachable(e);
      const elapsed = performance.now() - t0;
      const detail = { node: node.nodeId, link, attempt, code: errorCode(e), err: rootMessage(e) };
      if (!unreachable) {
        log.error(detail, 'cluster start failed: not a link outage (a bad URL, password, database or schema), not retried');
        throw e;
      }
      const wait = Math.min(START_BACKOFF_MAX_MS, START_BACKOFF_MS * 2 ** Math.min(attempt - 1, 10)) * (0.5 + Math.random() / 2);
      if (elapsed + wait > budgetMs) {
        log.error({ ...detail, ms: Math.round(elapsed) }, 'cluster link still unreachable at start: giving up');
        throw new Error(`${(e as Error).message}; still unreachable after ${attempt} attempts in ${Math.round(elapsed / 1000)} s (PANTHERS_CLUSTER_START_TIMEOUT_MS=${budgetMs})`, { cause: e });
      }
      log.warn({ ...detail, retry_in_ms: Math.round(wait) }, 'cluster link unreachable at start: retrying');
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** NATS errors that can pass: the server down, restarting, the link resetting or timing out. An authorization or argument error cannot. */
function natsUnreachable(e: unknown): boolean {
  let transient = false;
  for (const x of causeChain(e)) {
    const name = typeof x.name === 'string' ? x.name : '';
    if (/Authorization|Authentication|PermissionViolation|InvalidArgument/.test(name)) return false;
    if (x.code === 'ENOTFOUND') return false;
    if (name === 'ConnectionError' || name === 'TimeoutError' || pgUnreachable({ code: x.code })) transient = true;
  }
  return transient;
}

function errorCode(e: unknown): string | undefined {
  for (const x of causeChain(e)) {
    if (typeof x.code === 'string') return x.code;
    if (!x.cause && typeof x.name === 'string' && x.name !== 'Error') return x.name;
  }
  return undefined;
}

/** The innermost message (the wrapper's text repeats it); never a URL's credentials: neither client puts them in messages. */
function rootMessage(e: unknown): string {
  let last: CauseLink | undefined;
  for (const x of causeChain(e, 6)) last = x;
  return typeof last?.message === 'string' ? last.message : String(e);
}

/** One process: the same seams, doing nothing. */
export function localCluster(): { invalidations: Invalidations; revocations: Revocations } {
  return { invalidations: new LocalInvalidations(), revocations: new LocalRevocations() };
}
