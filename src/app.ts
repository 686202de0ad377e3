import type { DestinationStream } from 'pino';
import type { Config } from './config.js';
import { defaultPublicUrl } from './server/public-url.js';
import { createLogger } from './logger.js';
import { openDatabase, type Db } from './db/database.js';
import { Metrics } from './metrics.js';
import { ActorRegistry } from '../actors/registry.js';
import { TokenService, TOKEN_ISSUER } from './auth/tokens.js';
import { CachedOwnership, type OwnershipVerifier } from './auth/ownership.js';
import { AgentAccess, loadAgentCredentialKey } from './auth/agent-access.js';
import { openSqliteStorage, type Storage } from './db/storage.js';
import { HttpServer, type AuditSink, type RequestVerifier } from './server/http-server.js';
import { WsServer, type WsMessageHandler } from './server/ws-server.js';
import { LiveConnections } from './server/live-connections.js';
import { Router } from './server/router.js';
import type { AuthClaims, RouteDef } from './server/route.js';
import { RateLimiter } from './guards/rate-limiter.js';
import { Cors } from './guards/cors.js';
import { StaticFiles } from './server/static-files.js';
import { OverloadMonitor } from './guards/overload.js';
import { monitoringRoutes } from './routes/monitoring.js';
import type { AppContext } from './app-context.js';
import type { ProviderAdapter, ProviderName } from './providers/provider.js';
import type { ModelBackend } from './models/model-backend.js';
import { features } from './features.js';
import { shutDown } from './shutdown.js';
import type { Feature } from './feature.js';
import { ClusterApp, localCluster } from './cluster/cluster-app.js';

export interface AppOptions {
  /** Replace the configured ownership verifier (tests, or an embedding program). */
  ownership?: OwnershipVerifier;
  /** Replace or add provider adapters. */
  providers?: Partial<Record<ProviderName, ProviderAdapter>>;
  /** Replace or add model backends by name. */
  models?: Partial<Record<string, ModelBackend>>;
  logDestination?: DestinationStream;
  now?: () => number;
}

export interface App {
  readonly ctx: AppContext;
  readonly http: HttpServer;
  readonly ws: WsServer;
  readonly routes: { api: Router; agents: Router };
  /** Listens and recovers persisted work. Resolves with the bound port. */
  start(): Promise<number>;
  /** Graceful (see shutdown.ts): stop accepting, abort turns and await their writes, end streams and sockets, flush, close SQLite. */
  stop(): Promise<void>;
}

/**
 * The one composition function: builds the whole orchestrator process from a Config.
 * The CLI calls it; tests call it with other adapters.
 */
export async function createApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const log = createLogger({ level: config.logLevel, pretty: config.logPretty, destination: opts.logDestination });
  const now = opts.now ?? Date.now;
  const db: Db = openDatabase(config.dataDir);
  const actors = new ActorRegistry({ log, idleMs: config.actorIdleMs, now });

  let deploymentsActive = () => 0;
  const metrics = new Metrics({
    actorCounts: () => actors.counts(),
    deploymentsActive: () => deploymentsActive(),
  });
  actors.events = {
    onCrash: (kind) => metrics.actorCrashes.labels(kind).inc(),
    onPassivate: (kind) => metrics.actorPassivations.labels(kind).inc(),
  };

  const rateLimiter = config.rateLimits === 'off' ? undefined : new RateLimiter(config.rateLimits);
  const cors = new Cors(config.corsOrigins);
  const overload = new OverloadMonitor(config.eventLoopLagLimitMs);

  // Late-bound so feature modules can replace them while being wired.
  let authenticate = (token: string, _agentNft?: string): Promise<AuthClaims> => tokens.verify(token);
  let audit: AuditSink | undefined;
  let requestVerifier: RequestVerifier | undefined;

  // Filled by the feature modules below; the WS server reads it per message.
  const wsHandlers: Record<string, WsMessageHandler> = {};
  const live = new LiveConnections();
  const ws = new WsServer({
    config, log, metrics, rateLimiter, live,
    authenticate: (t) => authenticate(t),
    audit: { record: (e) => audit?.record(e), refused: (e) => (audit?.refused ? audit.refused(e) : audit?.record(e)) },
    handlers: wsHandlers,
    clientIp: (ip, headers) => http.clientIp({ ip, headers }),
  });

  // Cluster mode (PANTHERS_DATABASE_URL + PANTHERS_NATS_URL): the node, its links and the seams
  // that cross nodes; src/cluster/cluster-app.ts is the one place cluster wiring lives.
  const cluster = config.cluster ? await ClusterApp.open(config.cluster, log, ws, rateLimiter, metrics) : undefined;
  if (cluster) ws.topicHooks = cluster.topicHooks;
  const seams = cluster ?? localCluster();
  // The stores: PostgreSQL in cluster mode (on the node's pool), else the SQLite file.
  const storage: Storage = cluster ? cluster.openStorage(config.dataDir) : openSqliteStorage(config.dataDir, { db, log, now });
  // The signing key: the data dir's file, or (cluster) the one row every node shares.
  const tokens = await TokenService.create(config.dataDir, TOKEN_ISSUER, now, storage.secrets);

  const providers = new Map<ProviderName, ProviderAdapter>();
  const models = new Map<string, ModelBackend>();
  const ctx: AppContext = {
    config, log, db, storage, metrics, actors, tokens,
    // One process: the registry answers every ask itself. Cluster mode: the ClusterDirectory
    // (local when this node serves the NFT's shard, else forwarded over NATS to its owner).
    directory: cluster ? cluster.directoryFor(actors, (topic, frame) => ws.publish(topic, frame)) : actors,
    // Cluster mode: owned actors' writes carry this node's lease (throws when it is not held now).
    ...(cluster ? { fenceFor: (nft: string) => cluster.node.fenceFor(nft) } : {}),
    agentAccess: new AgentAccess(storage.agentGrants, tokens, await loadAgentCredentialKey(storage.secrets), now, config.agentTokenTtlSec),
    ownership: new CachedOwnership(opts.ownership ?? (await defaultOwnership(config, storage)), config.ownershipCacheMs, now),
    publisher: cluster?.publisher ?? ws,
    invalidations: seams.invalidations,
    revocations: seams.revocations,
    cluster: cluster?.context,
    live,
    audit: { record: (e) => audit?.record(e) },
    providers,
    model: (name) => models.get(name),
    startedAt: now(),
    now,
  };

  const api = new Router();
  const agents = new Router();
  const startHooks: (() => Promise<void> | void)[] = [];
  const stopHooks: (() => Promise<void> | void)[] = [];
  const healthWarnings: (() => string | undefined)[] = [];

  // Each feature module contributes routes, WS handlers, adapters and lifecycle hooks.
  const wiring: Feature = {
    ctx,
    addRoutes: (routes: RouteDef[]) => void api.addAll(routes),
    addAgentRoutes: (routes: RouteDef[]) => void agents.addAll(routes),
    addWsHandlers: (h) => void Object.assign(wsHandlers, h),
    wsHandlers,
    setProvider: (name, adapter) => void providers.set(name, adapter),
    setModel: (name, backend) => void models.set(name, backend),
    setAuthenticate: (fn) => {
      authenticate = fn;
    },
    setAudit: (sink) => {
      audit = sink;
    },
    setRequestVerifier: (v) => {
      requestVerifier = v;
    },
    setDeploymentsActive: (fn) => {
      deploymentsActive = fn;
    },
    addHealthWarning: (fn) => void healthWarnings.push(fn),
    onStart: (fn) => void startHooks.push(fn),
    onStop: (fn) => void stopHooks.push(fn),
    routers: { api, agents },
  };
  for (const f of features) await f(wiring);
  for (const [name, a] of Object.entries(opts.providers ?? {})) if (a) providers.set(name as ProviderName, a);
  for (const [name, m] of Object.entries(opts.models ?? {})) if (m) models.set(name, m);
  api.addAll(monitoringRoutes({ ctx, deploymentsActive: () => deploymentsActive(), overloaded: () => overload.overloaded, cluster, warnings: () => healthWarnings.map((w) => w()).filter((w): w is string => !!w) }));

  const http: HttpServer = new HttpServer({
    config, log, metrics, api, agents, cors, rateLimiter, live,
    overload,
    authenticate: (t, agentNft) => authenticate(t, agentNft),
    audit: { record: (e) => audit?.record(e), refused: (e) => (audit?.refused ? audit.refused(e) : audit?.record(e)) },
    requestVerifier: { verify: (r) => requestVerifier?.verify(r) },
    attachWs: (app) => ws.attach(app),
    // The web console (dist/web, built by `npm run build`), at `/` of the same process.
    staticFiles: new StaticFiles(),
  });

  let stopped = false;
  const app: App = {
    ctx, http, ws, routes: { api, agents },
    async start() {
      overload.start();
      const port = await http.listen(config.host, config.port);
      // PORT=0 binds an ephemeral port: the derived public URL must name the real one.
      if (!config.publicUrlExplicit) config.publicUrl = defaultPublicUrl(config.host, port);
      for (const h of startHooks) await h();
      // Claims this node's shards (and recovers their work) before saying it listens.
      await cluster?.start(actors);
      log.info({ host: config.host, port, dataDir: config.dataDir, publicUrl: config.publicUrl, ...(cluster ? { node: cluster.node.nodeId, shards: cluster.node.owned().length } : {}) }, 'listening');
      return port;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // A cluster node hands its shards over before anything is aborted: their turns finish here
      // and new asks reach the next owners, so a planned stop shows as latency, not errors.
      await cluster?.handOff();
      await shutDown({
        http, ws, actors, log, graceMs: config.shutdownGraceMs,
        flush: async () => {
          for (const h of stopHooks.reverse()) await h();
          // The actors are drained: release this node's shards so others take them at once.
          await cluster?.stop();
        },
        close: () => {
          actors.stopAll();
          overload.stop();
          ctx.ownership.close();
          // The last turns' usage (SQLite writes it by group commit), before the file closes.
          ctx.storage.quota.flush?.();
          db.close();
        },
      });
      log.info('stopped');
      await new Promise<void>((r) => log.flush(() => r()));
    },
  };
  return app;
}

async function defaultOwnership(config: Config, storage: Pick<Storage, 'blockCursor' | 'nftOwners'>): Promise<OwnershipVerifier> {
  if (config.ownership === 'evm') {
    const { EvmOwnership } = await import('../adapters/ownership/evm.js');
    const cursor = storage.blockCursor(`evm:${config.chainId}:${config.nftContract!.toLowerCase()}`);
    return new EvmOwnership({ rpcUrl: config.evmRpcUrl!, contract: config.nftContract!, chainId: config.chainId, cursor });
  }
  const { RegistryOwnership } = await import('../adapters/ownership/registry.js');
  return new RegistryOwnership(storage.nftOwners, config.ownersFile);
}

