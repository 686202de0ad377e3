import * as jose from 'jose';
import * as v from 'valibot';
import type { DestinationStream } from 'pino';
import type { Config } from './config.js';
import { defaultPublicUrl } from './server/public-url.js';
import { createLogger, type Logger } from './logger.js';
import { openDatabase, type Db } from './db/database.js';
import { Metrics } from './metrics.js';
import { ActorRegistry } from '../actors/registry.js';
import { TokenService, TOKEN_ISSUER, ACCESS_TOKEN_TTL_SEC, agentAudience, verifyJwt } from './auth/tokens.js';
import { ConfigError } from './config.js';
import { OrchestratorLink } from './agents/orchestrator-link.js';
import { agentSignInRoutes } from './routes/agent-sign-in.js';
import { CachedOwnership, type OwnershipVerifier } from './auth/ownership.js';
import { SignIn } from './auth/sign-in.js';
import { HttpServer } from './server/http-server.js';
import { WsServer, type WsMessageHandler } from './server/ws-server.js';
import { chatStreamHandler } from './agents/chat-stream-ws.js';
import { chooseModel } from './agents/model-choice.js';
import { Router } from './server/router.js';
import { route, type AuthClaims } from './server/route.js';
import { nftTokenId } from './server/validation.js';
import { RateLimiter } from './guards/rate-limiter.js';
import { ChatQuota } from './guards/quota.js';
import { AuditLog } from './guards/audit-log.js';
import { Cors } from './guards/cors.js';
import { OverloadMonitor } from './guards/overload.js';
import { ApiError } from './errors.js';
import { SqliteConversationsStore } from './agents/conversations-store.sqlite.js';
import { defaultCharacter } from './agents/character.js';
import { agentRoutes } from './routes/agent.js';
import { shutDown } from './shutdown.js';
import { IdempotencyStore } from './guards/idempotency.js';
import { openaiRoutes } from './routes/openai-compat.js';
import { agentActorKind } from '../actors/agent-actor.js';
import { createModelBackends } from '../adapters/models/index.js';
import { RegistryOwnership } from '../adapters/ownership/registry.js';
import { EvmOwnership } from '../adapters/ownership/evm.js';
import type { AgentSettings } from './providers/provider.js';
import type { ModelBackend } from './models/model-backend.js';
import { randomUUID } from 'node:crypto';

export interface AgentAppOptions {
  nft: string;
  character?: Partial<AgentSettings>;
  ownership?: OwnershipVerifier;
  models?: Partial<Record<string, ModelBackend>>;
  logDestination?: DestinationStream;
  now?: () => number;
}

/** The agent's character from its environment (what a provider passes to the container). */
export function characterFromEnv(env: Record<string, string | undefined>): Partial<AgentSettings> {
  const c: Partial<AgentSettings> = {};
  if (env.PANTHERS_AGENT_NAME) c.name = env.PANTHERS_AGENT_NAME;
  if (env.PANTHERS_AGENT_SYSTEM_PROMPT) c.system_prompt = env.PANTHERS_AGENT_SYSTEM_PROMPT;
  if (env.PANTHERS_AGENT_MODEL) c.model = env.PANTHERS_AGENT_MODEL;
  if (env.PANTHERS_AGENT_CAPABILITIES) c.capabilities = env.PANTHERS_AGENT_CAPABILITIES.split(',').map((s) => s.trim()).filter(Boolean);
  return c;
}

/**
 * One agent alone (`panthers agent --nft ID`): what a remote provider runs in its container. Its
 * own SQLite holds the conversations; it accepts its own access tokens (issued by its POST
 * /auth/verify) and, given PANTHERS_ORCHESTRATOR_URL and its deployment credential, the
 * orchestrator's agent-scoped tokens for its NFT (audience agent:{nft}, checked against the
 * JWKS and the revocation list it pulls). Orchestrator session tokens are refused.
 */
export interface AgentApp {
  readonly http: HttpServer;
  readonly actors: ActorRegistry;
  readonly db: Db;
  readonly tokens: TokenService;
  readonly log: Logger;
  start(): Promise<number>;
  stop(): Promise<void>;
}

export async function createAgentApp(config: Config, opts: AgentAppOptions): Promise<AgentApp> {
  const nft = v.parse(nftTokenId, opts.nft);
  const log = createLogger({ level: config.logLevel, pretty: config.logPretty, destination: opts.logDestination }).child({ agent_nft: nft });
  const now = opts.now ?? Date.now;
  const startedAt = now();
  const db = openDatabase(config.dataDir);
  const actors = new ActorRegistry({ log, idleMs: config.actorIdleMs, now });
  const metrics = new Metrics({ actorCounts: () => actors.counts() });
  const tokens = await TokenService.create(config.dataDir, TOKEN_ISSUER, now);
  const audience = [agentAudience(nft)];

  // The orchestrator link: revocations, the agent's public endpoint, and (registry) ownership.
  const orchestratorUrl = config.orchestratorUrl;
  const jwksUrl = config.orchestratorJwksUrl ?? (orchestratorUrl ? `${orchestratorUrl}/.well-known/jwks.json` : undefined);
  if (jwksUrl && !(orchestratorUrl && config.agentCredential)) {
    // Tokens that could not be checked for revocation would outlive logout: refuse to start.
    throw new ConfigError('PANTHERS_AGENT_CREDENTIAL', 'and PANTHERS_ORCHESTRATOR_URL are required to accept orchestrator tokens (the agent pulls revocations with them)');
  }
  const link = orchestratorUrl && config.agentCredential
    ? new OrchestratorLink({
      orchestratorUrl, nft, credential: config.agentCredential, pollMs: config.agentRevocationPollMs,
      maxStaleMs: config.agentRevocationMaxStaleMs, log, now,
    })
    : undefined;
  const inner = opts.ownership ?? (config.ownership === 'evm'
    ? new EvmOwnership({ rpcUrl: config.evmRpcUrl!, contract: config.nftContract!, chainId: config.chainId })
    : link
      ? { kind: 'orchestrator', ownerOf: (n: string) => link.ownerOf(n) }
      : new RegistryOwnership(db, config.ownersFile));
  const ownership = new CachedOwnership(inner, config.ownershipCacheMs, now);
  const models = createModelBackends(config);
  for (const [name, m] of Object.entries(opts.models ?? {})) if (m) models.set(name, m);

  // Orchestrator tokens: only agent-scoped ones for this NFT, verified against its published
  // keys (fetched and cached by jose), then against the revocation list.
  const orchestratorKeys = jwksUrl ? jose.createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 5000 }) : undefined;
  const authenticate = async (token: string): Promise<AuthClaims> => {
    let claims: AuthClaims;
    try {
      claims = await tokens.verify(token, audience);
    } catch (e) {
      if (!orchestratorKeys || !(e instanceof ApiError) || e.code !== 'UNAUTHORIZED' || e.details.reason === 'wrong_audience') throw e;
      claims = await verifyJwt(token, orchestratorKeys, TOKEN_ISSUER, now, 'orchestrator', audience);
      link!.check(claims);
    }
    return claims;
  };

  const character: AgentSettings = { ...defaultCharacter(nft, config.model), ...opts.character };
  const conversations = new SqliteConversationsStore(db, log);
  const rateLimiter = config.rateLimits === 'off' ? undefined : new RateLimiter(config.rateLimits);
  const wsHandlers: Record<string, WsMessageHandler> = {};
  // The client address as HTTP sees it (X-Forwarded-For from a trusted ingress): the per-IP
  // socket cap must not count every user behind the provider's proxy as one address.
  // The agent's own hash-chained audit log (same table and chain as the orchestrator's, so
  // `panthers audit verify --data-dir` checks it): its HTTP calls, upgrades and WS messages.
  const audit = new AuditLog({ db, log, metrics, retentionDays: config.auditRetentionDays, maxRows: config.auditMaxRows, now });
  const ws: WsServer = new WsServer({ config, log, metrics, rateLimiter, authenticate, audit, handlers: wsHandlers, clientIp: (ip, headers) => http.clientIp({ ip, headers }) });
  const quota = new ChatQuota(db, config.chatDailyTokenQuota, now);
  actors.register(agentActorKind({
    repo: conversations, publisher: ws, log, now,
    character: () => character,
    model: (setting) => chooseModel(setting, config.model, (name) => models.get(name), config.modelsAllowed),
    concurrency: config.chatConcurrency,
    historyTokenBudget: config.historyTokenBudget,
    maxTokens: config.modelMaxTokens,
    onTurn: (o) => metrics.chatTurns.labels(o).inc(),
    // The same spend limits as embedded agents, on the agent's own SQLite.
    quota,
  }));

  const signIn = new SignIn({ db, ownership, now, publicUrl: () => config.publicUrl, evmChainId: config.chainId });
  const available = (n: string) => n === nft;
  const authorize = async (auth: AuthClaims, n: string) => {
    if (auth.nft !== n) throw new ApiError('FORBIDDEN', `This token is not for the agent of NFT ${n}`);
    // Checked again per use, not only at connect: a WebSocket opened before a logout cannot
    // start another turn once the revocation has been pulled.
    if (auth.issuer === 'orchestrator') link?.check(auth);
    // Every token, ours or the orchestrator's, only while its wallet owns the NFT (cached for
    // PANTHERS_OWNERSHIP_CACHE_MS): a transfer nobody told us about still ends access.
    if (!(await ownership.owns(auth.sub, n))) throw new ApiError('FORBIDDEN', `This wallet does not own NFT ${n}`);
  };
  /** Whom the wallet signs in to: the explicit public URL, else what the orchestrator reported. */
  const publicOrigin = (): string => {
    if (config.publicUrlExplicit || !link) return config.publicUrl;
    if (!link.endpointUrl) {
      throw new ApiError('SERVICE_UNAVAILABLE', 'The agent does not know its public endpoint yet (the orchestrator reports it once the deployment has one); retry shortly', { reason: 'endpoint_unknown' });
    }
    return link.endpointUrl;
  };
  const idempotency = new IdempotencyStore(db, now, config.idempotencyTtlMs);
  wsHandlers.chat_stream = chatStreamHandler({ actors, conversations, maxMessageChars: config.maxMessageChars, available, authorize, idempotency, turnTimeoutMs: config.streamTimeoutMs });
  const api = new Router();
  api.addAll(agentSignInRoutes({
    signIn,
    requireAgent: () => undefined,
    origin: publicOrigin,
    async issue(wallet) {
      const access = await tokens.issue({ sub: wallet, nft, sid: `agent-${randomUUID()}`, aud: agentAudience(nft) }, ACCESS_TOKEN_TTL_SEC);
      return { access_token: access.token, expires_in: access.expiresIn };
    },
  }));
  const agentDeps = { actors, conversations, maxMessageChars: config.maxMessageChars, startedAt, now, available, authorize, usage: (n: string) => quota.usage(n), idempotency };
  api.addAll(agentRoutes(agentDeps));
  api.addAll(openaiRoutes(agentDeps));
  api.addAll([
    route({
      method: 'GET', path: '/metrics', rateClass: 'other', auth: 'none', summary: 'Prometheus metrics', raw: true,
      async handler() {
        const m = await metrics.render();
        return { kind: 'text', status: 200, body: m.body, contentType: m.contentType };
      },
    }),
  ]);

  const overload = new OverloadMonitor(config.eventLoopLagLimitMs);
  const http: HttpServer = new HttpServer({
    config, log, metrics, api, fixedAgentNft: nft, authenticate, rateLimiter, cors: new Cors(config.corsOrigins), overload, audit,
    attachWs: (app) => ws.attach(app),
  });
  let stopped = false;
  return {
    http, actors, db, tokens, log,
    async start(): Promise<number> {
      overload.start();
      audit.start();
      const port = await http.listen(config.host, config.port);
      if (!config.publicUrlExplicit) config.publicUrl = defaultPublicUrl(config.host, port);
      // First pull before 'listening': orchestrator tokens work from the first request.
      await link?.start();
      log.info({ host: config.host, port, nft, orchestrator: orchestratorUrl ?? null, revocation_poll_ms: link ? config.agentRevocationPollMs : null }, 'listening');
      return port;
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      link?.stop();
      await shutDown({
        http, ws, actors, log, graceMs: config.shutdownGraceMs,
        flush: () => {
          quota.flush();
          return conversations.flush();
        },
        close: () => {
          actors.stopAll();
          overload.stop();
          audit.stop();
          db.close();
        },
      });
      log.info('stopped');
      await new Promise<void>((r) => log.flush(() => r()));
    },
  };
}
