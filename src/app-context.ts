import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { Db } from './db/database.js';
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

/** Everything route modules, WS handlers and actors are built from: wired once in app.ts. */
export interface AppContext {
  readonly config: Config;
  readonly log: Logger;
  readonly db: Db;
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
  readonly startedAt: number;
  readonly now: () => number;
}
