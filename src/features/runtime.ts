import * as v from 'valibot';
import PQueue from 'p-queue';
import type { FeatureModule } from '../feature.js';
import type { AppContext } from '../app-context.js';
import { ApiError } from '../errors.js';
import { nftTokenId } from '../server/validation.js';
import type { WsConn, WsMessageHandler } from '../server/ws-server.js';
import type { AuthClaims } from '../server/route.js';
import type { Deployment, DeploymentsStore } from '../deployments/deployments-store.js';
import { SqliteDeploymentsStore } from '../deployments/deployments-store.sqlite.js';
import { deploymentTopic } from '../deployments/deployment-frames.js';
import type { ConversationsStore } from '../agents/conversations-store.js';
import { chatTopic } from '../agents/chat-frames.js';
import { defaultCharacter } from '../agents/character.js';
import type { AgentHost } from '../agents/agent-host.js';
import type { AgentSettings, DeploySpec, ProviderName } from '../providers/provider.js';
import { DEPLOYMENT_ACTOR, type DeploymentMsg, type DeploymentView } from '../contracts/deployment-messages.js';
import { AGENT_ACTOR, type AgentMsg } from '../contracts/agent-messages.js';
// Wiring: this feature runs the deployment and agent actor kinds in this process.
import { deploymentActorKind } from '../../actors/deployment-actor.js';
import { agentActorKind } from '../../actors/agent-actor.js';
import { LocalProvider } from '../../adapters/providers/local.js';
import { createAkashProvider } from '../../adapters/providers/akash/index.js';
import { createSecretVmProvider } from '../../adapters/providers/secretvm/index.js';
import { deploymentRoutes } from '../routes/deployments.js';
import { agentRoutes } from '../routes/agent.js';
import { conversationListRoutes } from '../routes/conversations.js';
import { openaiRoutes } from '../routes/openai-compat.js';
import { chatStreamHandler } from '../agents/chat-stream-ws.js';
import { chooseModel } from '../agents/model-choice.js';
import { embeddedEndpointUrl } from '../agents/embedded-endpoint.js';
import { createChatQuota } from './guarantees.js';
import { IdempotencyStore } from '../guards/idempotency.js';
import { viewForReader } from '../deployments/deployment-view.js';
import { sameWallet } from '../auth/ownership.js';
import { shardOf } from '../cluster/shards.js';

const DEPLOY_TIMEOUT_MS: Record<ProviderName, number> = { local: 30_000, akash: 30 * 60_000, secret_vm: 30 * 60_000 };

/** Embedded agents: the set of NFTs whose agent the local provider has started in this process. */
class EmbeddedAgents implements AgentHost {
  private readonly mounted = new Map<string, AgentSettings>();

  constructor(private readonly ctx: AppContext) {}

  async mount(nft: string, settings: AgentSettings): Promise<void> {
    this.mounted.set(nft, settings);
  }

  unmount(nft: string): void {
    this.mounted.delete(nft);
    // Its turns end now (each stores what it had and ends its stream); the actor itself is
    // stopped once idle, so a second instance never runs beside turns still finishing.
    if (this.ctx.actors.isLive(AGENT_ACTOR, nft)) this.ctx.actors.tell(AGENT_ACTOR, nft, { type: 'stop' } satisfies AgentMsg);
    this.ctx.actors.passivate(AGENT_ACTOR, nft);
  }

  isMounted(nft: string): boolean {
    return this.mounted.has(nft);
  }

  /**
   * Cluster mode: the shard left this node, so its mounts say nothing any more (the new owner
   * mounts the agent again when it recovers the deployment). Its actors are the cluster's to stop.
   */
  forgetShard(shard: number): void {
    for (const nft of this.mounted.keys()) if (shardOf(nft) === shard) this.mounted.delete(nft);
  }

  settings(nft: string): AgentSettings | undefined {
    return this.mounted.get(nft);
  }

  async ping(nft: string): Promise<void> {
    // The agent mounted here, through this process's registry (one process: the same call as the
    // directory). In cluster mode a deploy still finishing on a node that is handing the shard off
    // must not ask the directory: it forwards to the shard's owner, and there is none until the
    // handoff, which waits for this deploy, is over.
    await this.ctx.actors.ask(AGENT_ACTOR, nft, { type: 'ping' } satisfies AgentMsg, 5000);
  }

  endpointUrl(nft: string): string {
    return embeddedEndpointUrl(this.ctx.config, nft);
  }
}

/**
 * Deployments and embedded agents: the DeploymentActor and AgentActor kinds, the local provider,
 * the deployment and Agent API routes, the WS subscribe/unsubscribe/chat_stream messages, and
 * restart recovery of deployments that were in flight.
 */
export const runtimeFeature: FeatureModule = (f) => {
  const { ctx } = f;
  const { deployments, conversations } = ctx.storage;
  const agents = new EmbeddedAgents(ctx);
  const idempotency = new IdempotencyStore(
    ctx.storage.idempotency, ctx.now, ctx.config.idempotencyTtlMs,
    // Cluster: another node's pending key is in progress while its request can still be running.
    ctx.storage.kind === 'postgres' ? Math.max(ctx.config.streamTimeoutMs, ctx.config.requestTimeoutMs) + 30_000 : 0,
  );
  // One p-queue per provider bounds the concurrency and rate of its calls.
  const queues = new Map<ProviderName, PQueue>();
  const queue = (p: ProviderName) => {
    let q = queues.get(p);
    if (!q) {
      const d = ctx.config.deploy;
      // The rate cap protects remote APIs; the local provider calls nothing outside this process.
      q = p === 'local'
        ? new PQueue({ concurrency: d.providerConcurrency })
        : new PQueue({ concurrency: d.providerConcurrency, intervalCap: d.providerRatePerSec, interval: 1000 });
      queues.set(p, q);
    }
    return q;
  };
  const limiter = (p: ProviderName) => <T>(call: () => Promise<T>) => queue(p).add(call) as Promise<T>;

  f.setProvider('local', new LocalProvider(agents));
  // Remote providers are always registered; missingConfig() makes POST /deployments answer 503 naming
  // the variables to set until their API keys are configured. Their HTTP calls go through the queue
  // one by one (a deploy waits minutes for bids; it must not hold a queue slot meanwhile).
  f.setProvider('akash', createAkashProvider(ctx.config, ctx.log, { limit: limiter('akash') }));
  f.setProvider('secret_vm', createSecretVmProvider(ctx.config, ctx.log, { limit: limiter('secret_vm') }));

  ctx.actors.register(deploymentActorKind({
    repo: deployments,
    fenceFor: ctx.fenceFor,
    ...(ctx.cluster ? { serves: (nft: string) => ctx.cluster!.serves(shardOf(nft)) } : {}),
    providers: ctx.providers,
    // Local calls are whole in-process operations: queue them; remote adapters queue each HTTP call.
    run: (p, call) => (p === 'local' ? (queue(p).add(call) as Promise<never>) : call()),
    publisher: ctx.publisher,
    log: ctx.log,
    now: ctx.now,
    healthIntervalMs: ctx.config.deploy.healthIntervalMs,
    deployTimeoutMs: (p) => DEPLOY_TIMEOUT_MS[p],
    specFor: (d) => agentSpec(ctx, d),
    secrets: ctx.storage.providerSecrets,
  }));

  // Usage is counted even without a limit, so an owner can see it (GET /usage).
  const quota = createChatQuota(ctx);
  ctx.actors.register(agentActorKind({
    repo: conversations,
    fenceFor: ctx.fenceFor,
    publisher: ctx.publisher,
    log: ctx.log,
    now: ctx.now,
    character: (nft) => {
      const character = (latest: Deployment | undefined): AgentSettings => {
        const c = agents.settings(nft) ?? latest?.agent ?? defaultCharacter(nft, ctx.config.model);
        // A deployment made by a previous owner answers the new one without the old system prompt
        // (it may be personal); the name, model and capabilities stay until the new owner redeploys.
        const deployer = latest?.wallet;
        const owner = ctx.ownership.peek(nft);
        if (deployer && owner && !sameWallet(deployer, owner)) return { ...c, system_prompt: defaultCharacter(nft, ctx.config.model).system_prompt };
        return c;
      };
      // The cache answers at once (always on SQLite); otherwise one read.
      const cached = deployments.peekLatest(nft);
      return cached !== undefined ? character(cached ?? undefined) : deployments.latest(nft).then(character);
    },
    model: (setting) => chooseModel(setting, ctx.config.model, ctx.model, ctx.config.modelsAllowed),
    concurrency: ctx.config.chatConcurrency,
    historyTokenBudget: ctx.config.historyTokenBudget,
    maxTokens: ctx.config.modelMaxTokens,
    onTurn: (outcome) => ctx.metrics.chatTurns.labels(outcome).inc(),
    quota,
  }));

  const authorize = async (auth: AuthClaims, nft: string) => {
    // The token must be for this NFT, and its wallet must still own it.
    if (auth.nft !== nft || !(await ctx.ownership.owns(auth.sub, nft))) {
      throw new ApiError('FORBIDDEN', `This token does not give access to the agent of NFT ${nft}`);
    }
  };

  // An embedded agent is mounted on the node that owns its NFT's shard. In cluster mode every node
  // asks the store (its cached view is dropped by the deployment frames): a mount left on a node
  // the shard moved away from says nothing about the deployment now (it may have been stopped
  // through its new owner).
  const runsEmbedded = (d: Deployment | null | undefined) => d?.status === 'running' && d.provider === 'local';
  const available = ctx.cluster
    ? (nft: string): boolean | Promise<boolean> => {
      const cached = deployments.peekLatest(nft);
      return cached !== undefined ? runsEmbedded(cached) : deployments.latest(nft).then(runsEmbedded);
    }
    : (nft: string): boolean => agents.isMounted(nft);
  f.addRoutes(deploymentRoutes(ctx, deployments, idempotency));
  const agentDeps = {
    actors: ctx.directory, conversations, maxMessageChars: ctx.config.maxMessageChars, startedAt: ctx.startedAt, now: ctx.now,
    available, authorize, usage: (nft: string) => quota.usage(nft), idempotency,
  };
  f.addAgentRoutes(agentRoutes(agentDeps));
  f.addAgentRoutes(openaiRoutes(agentDeps));
  f.addAgentRoutes(conversationListRoutes({ conversations, authorize }));
  f.addWsHandlers(wsHandlers(ctx, available, conversations, deployments, authorize, idempotency));
  // A gauge is read synchronously: SQLite counts now, PostgreSQL answers the previous count.
  let active = 0;
  f.setDeploymentsActive(() => {
    if (deployments instanceof SqliteDeploymentsStore) return deployments.repo.activeCount();
    void deployments.activeCount().then((n) => (active = n), () => undefined);
    return active;
  });

  f.onStart(async () => {
    const cluster = ctx.cluster;
    if (cluster) {
      cluster.onShardLost((shard) => agents.forgetShard(shard));
      // Cluster mode: a node recovers the deployments of the shards it gains, when it gains them
      // (at start, when a node joins or leaves, after a failover): the table is the list of
      // entities to remember.
      cluster.onShardsGained((shards) => {
        deployments.unfinishedNfts().then((all) => {
          // Only what is still ours: a shard may have moved on while the scan ran.
          const nfts = all.filter((nft) => shards.has(shardOf(nft)) && cluster.serves(shardOf(nft)));
          for (const nft of nfts) ctx.actors.tell(DEPLOYMENT_ACTOR, nft, { type: 'recover' } satisfies DeploymentMsg);
          if (nfts.length) ctx.log.info({ deployments: nfts.length, shards: shards.size }, 'recovering deployments of gained shards');
        }, (e) => ctx.log.error({ err: e }, 'recovery scan failed'));
      });
      return;
    }
    // Reconcile every deployment that was mid-lifecycle when the process stopped.
    const nfts = await deployments.unfinishedNfts();
    for (const nft of nfts) ctx.directory.tell(DEPLOYMENT_ACTOR, nft, { type: 'recover' } satisfies DeploymentMsg);
    if (nfts.length) ctx.log.info({ deployments: nfts.length }, 'recovering deployments');
  });
  f.onStop(async () => {
    await conversations.flush();
    for (const q of queues.values()) q.clear();
  });
};

/** Env and secrets for the agent process a provider starts (the standalone `panthers agent`). */
function agentSpec(ctx: AppContext, d: Deployment): DeploySpec {
  const c = ctx.config;
  const env: Record<string, string> = {
    PANTHERS_AGENT_NFT: d.nft_token_id,
    PANTHERS_AGENT_NAME: d.agent.name,
    PANTHERS_AGENT_MODEL: d.agent.model,
    PANTHERS_AGENT_CAPABILITIES: d.agent.capabilities.join(','),
    // Identity: the orchestrator the agent pulls revocations from, checks tokens against (JWKS)
    // and, in registry mode, asks who owns its NFT (with the credential in the secrets).
    PANTHERS_ORCHESTRATOR_URL: c.publicUrl,
    PANTHERS_ORCHESTRATOR_JWKS_URL: `${c.publicUrl}/.well-known/jwks.json`,
    PANTHERS_OWNERSHIP: c.ownership,
    PANTHERS_OWNERSHIP_CACHE_MS: String(c.ownershipCacheMs),
    PANTHERS_CHAIN_ID: String(c.chainId),
    ...(c.nftContract ? { PANTHERS_NFT_CONTRACT: c.nftContract } : {}),
    PANTHERS_MODEL: c.model,
    PANTHERS_OPENAI_BASE_URL: c.openai.baseUrl,
    PANTHERS_OPENAI_MODEL: c.openai.model,
    PANTHERS_OPENAI_MAX_TOKENS_FIELD: c.openai.maxTokensField,
    PANTHERS_OLLAMA_URL: c.ollama.baseUrl,
    PANTHERS_OLLAMA_MODEL: c.ollama.model,
    // The operator's spend limits travel with the agent: a standalone agent enforces them too.
    PANTHERS_MODELS_ALLOWED: c.modelsAllowed.join(','),
    PANTHERS_MODEL_MAX_TOKENS: String(c.modelMaxTokens),
    PANTHERS_CHAT_DAILY_TOKEN_QUOTA: String(c.chatDailyTokenQuota),
    PANTHERS_MAX_MESSAGE_CHARS: String(c.maxMessageChars),
    PORT: '8080',
    HOST: '0.0.0.0',
  };
  const secrets: Record<string, string> = {};
  // Scoped to this deployment's NFT and dead once it stops: see src/auth/agent-access.ts.
  secrets.PANTHERS_AGENT_CREDENTIAL = ctx.agentAccess.credentialFor(d.id, d.nft_token_id);
  // An RPC URL often embeds the operator's provider key: it travels as a secret.
  if (c.ownership === 'evm' && c.evmRpcUrl) secrets.PANTHERS_EVM_RPC_URL = c.evmRpcUrl;
  if (c.openai.apiKey) secrets.PANTHERS_OPENAI_API_KEY = c.openai.apiKey;
  // The system prompt can be long and personal: it travels with the secrets, not the plain env.
  secrets.PANTHERS_AGENT_SYSTEM_PROMPT = d.agent.system_prompt;
  return { deploymentId: d.id, nftTokenId: d.nft_token_id, resources: d.resources, agent: d.agent, env, secrets };
}

const subscribeMsg = v.object({ type: v.literal('subscribe'), channel: v.picklist(['deployment'] as const, 'must be "deployment"'), nft_token_id: nftTokenId });
const unsubscribeMsg = v.object({ type: v.literal('unsubscribe'), channel: v.picklist(['deployment', 'chat'] as const, 'must be "deployment" or "chat"'), nft_token_id: v.optional(nftTokenId), conversation_id: v.optional(v.string()) });

function wsHandlers(
  ctx: AppContext,
  available: (nft: string) => boolean | Promise<boolean>,
  conversations: ConversationsStore,
  deployments: DeploymentsStore,
  authorize: (auth: AuthClaims, nft: string) => Promise<void>,
  idempotency: IdempotencyStore,
): Record<string, WsMessageHandler> {
  return {
    subscribe: {
      schema: subscribeMsg,
      rateClass: 'other',
      async handle(conn: WsConn, msg: v.InferOutput<typeof subscribeMsg>) {
        const nft = msg.nft_token_id;
        if (!(await ctx.ownership.owns(conn.auth.sub, nft))) throw new ApiError('FORBIDDEN', `This wallet does not own NFT ${nft}`);
        conn.subscribe(deploymentTopic(nft));
        let current: DeploymentView | null = null;
        try {
          current = await ctx.directory.ask<DeploymentView>(DEPLOYMENT_ACTOR, nft, { type: 'get' } satisfies DeploymentMsg);
        } catch (e) {
          if (!(e instanceof ApiError && e.code === 'NOT_FOUND')) throw e;
        }
        const deployer = (deployments.peekLatest(nft) ?? (await deployments.latest(nft)))?.wallet;
        const shown = current && deployer ? viewForReader(current, deployer, conn.auth.sub) : current;
        conn.send({ type: 'subscribed', channel: 'deployment', nft_token_id: nft, deployment: shown });
      },
    },
    unsubscribe: {
      schema: unsubscribeMsg,
      rateClass: 'other',
      handle(conn: WsConn, msg: v.InferOutput<typeof unsubscribeMsg>) {
        const topic = msg.channel === 'deployment' ? (msg.nft_token_id && deploymentTopic(msg.nft_token_id)) : (msg.conversation_id && chatTopic(msg.conversation_id));
        if (!topic) throw new ApiError('MISSING_FIELD', `Missing required field: ${msg.channel === 'deployment' ? 'nft_token_id' : 'conversation_id'}`, { field: msg.channel === 'deployment' ? 'nft_token_id' : 'conversation_id' });
        const was = conn.unsubscribe(topic);
        conn.send({ type: 'unsubscribed', channel: msg.channel, nft_token_id: msg.nft_token_id, conversation_id: msg.conversation_id, was_subscribed: was });
      },
    },
    chat_stream: chatStreamHandler({
      actors: ctx.directory, conversations, maxMessageChars: ctx.config.maxMessageChars, available, authorize,
      idempotency, turnTimeoutMs: ctx.config.streamTimeoutMs,
    }),
  };
}
