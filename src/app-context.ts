import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { Db } from './db/database.js';
import type { Storage } from './db/storage.js';
import type { Fence } from './db/fence.js';
import type { Metrics } from './metrics.js';
import type { ActorDirectory, LocalActors } from './contracts/actor-directory.js';
import type { TokenService } from './auth/tokens.js';
import type { CachedOwnership } from './auth/ownership.js';
import type { AgentAccess } from './auth/agent-access.js';
import type { Publisher } from './server/ws-server.js';
import type { LiveConnections } from './server/live-connections.js';
import type { AuditSink } from './server/http-server.js';
import type { ProviderAdapter, ProviderName } from './providers/provider.js';
import type { ModelBackend } from './models/model-backend.js';
import type { Invalidations } from './cluster/invalidations.js';
import type { Revocations } from './cluster/revocations.js';
import type { ClusterContext } from './cluster/cluster-app.js';

/** Everything route modules, WS handlers and actors are built from: wired once in app.ts. */
export interface AppContext {
  readonly config: Config;
  readonly log: Logger;
  /** SQLite-only code still reads it; stores go through `storage` (src/db/storage.ts). */
  readonly db: Db;
  /** The stores behind the storage seam: SQLite by default, PostgreSQL in cluster mode. */
  readonly storage: Storage;
  /**
   * Cluster mode: the fence of this node's lease on an NFT's shard, for the writes its actors make
   * (throws FencedError when not held now). Absent on one process (SQLite).
   */
  readonly fenceFor?: (nft: string) => Fence | undefined;
  readonly metrics: Metrics;
  /** The actors running in this process: register kinds, passivate (the composition code and features that run actors). */
  readonly actors: LocalActors;
  /**
   * Where requests send actor messages: the local registry in one process, the cluster directory
   * (src/cluster/cluster-directory.ts) in cluster mode. Routes and WS handlers use only this.
   */
  readonly directory: ActorDirectory;
  readonly tokens: TokenService;
  readonly ownership: CachedOwnership;
  /** Agent-scoped tokens, deployment credentials, and `ownershipLost(nft)` (ends an NFT's agent tokens). */
  readonly agentAccess: AgentAccess;
  readonly publisher: Publisher;
  /** WebSockets and SSE streams by session: a revocation ends them at once */
  readonly live: LiveConnections;
  /** the audit trail (rows for events no request caused, e.g. a revocation after a transfer) */
  readonly audit: AuditSink;
  readonly providers: Map<ProviderName, ProviderAdapter>;
  /** The model backend for a name ('scripted' | 'openai' | 'ollama'); undefined if not configured. */
  model(name: string): ModelBackend | undefined;
  /** Cached views another node changed (cluster mode); one process: invalidate() does nothing. */
  readonly invalidations: Invalidations;
  /** Session revocations to every node (cluster mode); one process: nothing to tell. */
  readonly revocations: Revocations;
  /** Cluster mode only: node id, shard gains (recovery), fences for owned writes. */
  readonly cluster?: ClusterContext;
  readonly startedAt: number;
  readonly now: () => number;
}
