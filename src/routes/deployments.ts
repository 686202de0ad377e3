import * as v from 'valibot';
import type { AppContext } from '../app-context.js';
import { ApiError } from '../errors.js';
import { json, jsonText, route, type Request, type RouteDef } from '../server/route.js';
import { intParam, jsonObject, nftTokenId } from '../server/validation.js';
import { DEPLOYMENT_ACTOR, deploymentView, type DeploymentMsg, type DeploymentView } from '../contracts/deployment-messages.js';
import { DEPLOYMENT_STATUSES, type DeploymentsStore } from '../deployments/deployments-store.js';
import { PROVIDERS, type ProviderName, type Resources } from '../providers/provider.js';
import { defaultCharacter } from '../agents/character.js';
import { chooseModel } from '../agents/model-choice.js';
import { IdempotencyStore, idempotentJson } from '../guards/idempotency.js';
import { viewForReader } from '../deployments/deployment-view.js';
import { sameWallet } from '../auth/ownership.js';

export const ESTIMATED_SECONDS: Record<ProviderName, number> = { local: 1, akash: 180, secret_vm: 300 };
export const DEFAULT_RESOURCES: Resources = { cpu: 0.5, memory_mb: 512, disk_mb: 1024, gpu: 0 };

function deployBody(ctx: AppContext) {
  const b = ctx.config.deploy;
  return v.object({
    nft_token_id: nftTokenId,
    provider: v.picklist(PROVIDERS, `must be one of ${PROVIDERS.join(', ')}`),
    resources: v.optional(
      jsonObject({
        cpu: v.optional(v.pipe(v.number('must be a number'), v.minValue(0.1, 'must be at least 0.1'), v.maxValue(b.maxCpu, `must be at most ${b.maxCpu}`))),
        memory_mb: v.optional(v.pipe(v.number('must be a number'), v.integer('must be a whole number'), v.minValue(64, 'must be at least 64'), v.maxValue(b.maxMemoryMb, `must be at most ${b.maxMemoryMb}`))),
        disk_mb: v.optional(v.pipe(v.number('must be a number'), v.integer('must be a whole number'), v.minValue(64, 'must be at least 64'), v.maxValue(b.maxDiskMb, `must be at most ${b.maxDiskMb}`))),
        gpu: v.optional(v.pipe(v.number('must be a number'), v.integer('must be a whole number'), v.minValue(0, 'must be at least 0'), v.maxValue(b.maxGpu, `must be at most ${b.maxGpu}`))),
      }, 'must be an object'),
    ),
    agent: v.optional(
      jsonObject({
        name: v.optional(v.pipe(v.string('must be a string'), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(64, 'must be at most 64 characters'))),
        system_prompt: v.optional(v.pipe(v.string('must be a string'), v.maxLength(8000, 'must be at most 8000 characters'))),
        model: v.optional(v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(128, 'must be at most 128 characters'))),
        capabilities: v.optional(v.pipe(v.array(v.pipe(v.string('must be strings'), v.maxLength(64)), 'must be an array of strings'), v.maxLength(32, 'at most 32 capabilities'))),
      }, 'must be an object'),
    ),
  });
}

const listQuery = v.object({
  status: v.optional(v.picklist(DEPLOYMENT_STATUSES, `must be one of ${DEPLOYMENT_STATUSES.join(', ')}`)),
  provider: v.optional(v.picklist(PROVIDERS, `must be one of ${PROVIDERS.join(', ')}`)),
  limit: intParam(1, 100, 50),
  offset: intParam(0, 1_000_000_000, 0),
  sort: v.optional(v.picklist(['created_at', 'status', 'nft_token_id'] as const, 'must be one of created_at, status, nft_token_id'), 'created_at'),
  order: v.optional(v.picklist(['asc', 'desc'] as const, 'must be asc or desc'), 'desc'),
});

const deploymentResponse = v.object({
  deployment_id: v.string(), nft_token_id: v.string(), status: v.picklist(DEPLOYMENT_STATUSES), provider: v.picklist(PROVIDERS),
  endpoint_url: v.nullable(v.string()), progress: v.number(), created_at: v.string(), updated_at: v.string(),
  resources: v.object({ cpu: v.number(), memory_mb: v.number(), disk_mb: v.number(), gpu: v.number() }),
  agent: v.object({ name: v.string(), system_prompt: v.string(), model: v.string(), capabilities: v.array(v.string()) }),
  health: v.nullable(v.object({ ok: v.boolean(), checked_at: v.string(), latency_ms: v.number(), message: v.string() })),
  error: v.nullable(v.string()), details: v.nullable(v.record(v.string(), v.unknown())),
  /** made by a previous owner of the NFT: its system prompt is not shown */
  previous_owner: v.optional(v.literal(true)),
});

/** Ownership is re-checked on every deployment call (cached for PANTHERS_OWNERSHIP_CACHE_MS). */
async function owns(ctx: AppContext, req: Request<unknown, unknown>, nft: string): Promise<boolean> {
  return ctx.ownership.owns(req.auth!.sub, nft);
}

/** The candidates the wallet owns now (ownership answers are cached; a few at a time). */
async function ownedOf(ctx: AppContext, wallet: string, candidates: string[]): Promise<string[]> {
  const owned: string[] = [];
  for (let i = 0; i < candidates.length; i += 16) {
    const batch = candidates.slice(i, i + 16);
    const answers = await Promise.all(batch.map((nft) => ctx.ownership.owns(wallet, nft)));
    batch.forEach((nft, j) => answers[j] && owned.push(nft));
  }
  return owned;
}

export function deploymentRoutes(ctx: AppContext, repo: DeploymentsStore, idempotency?: IdempotencyStore): RouteDef[] {
  const ask = (nft: string, msg: DeploymentMsg) => ctx.directory.ask<DeploymentView>(DEPLOYMENT_ACTOR, nft, msg);
  return [
    route({
      method: 'POST', path: '/deployments', rateClass: 'deployment', auth: 'required', signed: true, idempotent: true, tags: ['deployments'],
      summary: 'Deploy the agent of an NFT', body: deployBody(ctx), successStatus: 202,
      response: v.object({ deployment_id: v.string(), status: v.string(), endpoint_url: v.nullable(v.string()), estimated_time: v.number() }),
      async handler(req) {
        const { nft_token_id: nft, provider } = req.body;
        req.nft = nft;
        if (!(await owns(ctx, req, nft))) throw new ApiError('FORBIDDEN', `This wallet does not own NFT ${nft}`);
        const adapter = ctx.providers.get(provider);
        const missing = adapter ? adapter.missingConfig() : `the ${provider} provider is not enabled on this server`;
        if (missing) throw new ApiError('SERVICE_UNAVAILABLE', `Provider ${provider} is not configured: ${missing}`, { provider });
        const resources: Resources = { ...DEFAULT_RESOURCES, ...req.body.resources };
        const agent = { ...defaultCharacter(nft, ctx.config.model), ...req.body.agent };
        // The operator decides which models may run (and cost): PANTHERS_MODELS_ALLOWED.
        if (ctx.config.modelsAllowed.length) try {
          chooseModel(agent.model, ctx.config.model, ctx.model, ctx.config.modelsAllowed);
        } catch (e) {
          if (e instanceof ApiError && e.code === 'FORBIDDEN') {
            throw new ApiError('INVALID_FIELD', `agent.model: ${e.message} (allowed: ${ctx.config.modelsAllowed.join(', ')})`, { field: 'agent.model', ...e.details });
          }
          throw e;
        }
        const deploy = async () => {
          const view = await ask(nft, { type: 'deploy', wallet: req.auth!.sub, provider, resources, agent });
          return json(202, {
            deployment_id: view.deployment_id, nft_token_id: nft, status: view.status, provider,
            endpoint_url: view.endpoint_url, estimated_time: ESTIMATED_SECONDS[provider],
          });
        };
        // With an Idempotency-Key, a retry answers the first deploy's 202 instead of a 409.
        if (!idempotency) return deploy();
        const key = IdempotencyStore.parseKey(req.header('idempotency-key'), 'Idempotency-Key');
        return idempotentJson(idempotency, req.auth!.sub, 'POST /deployments', key, req.body, deploy);
      },
    }),
    route({
      method: 'GET', path: '/deployments/:nft_token_id', rateClass: 'other', auth: 'required', tags: ['deployments'],
      summary: 'Deployment status of an NFT', response: deploymentResponse,
      async handler(req) {
        const nft = req.params.nft_token_id!;
        // Someone else's NFT looks exactly like one never deployed.
        if (!(await owns(ctx, req, nft))) throw new ApiError('NOT_FOUND', `NFT ${nft} has never been deployed`);
        // A read: the store is the truth (the actor writes through before it answers), so no actor
        // hop; its cache answers synchronously (always on SQLite), else one read.
        const peeked = repo.peekLatestViewJson(nft);
        const body = peeked === undefined ? await repo.latestViewJson(nft) : peeked ?? undefined;
        if (body === undefined) throw new ApiError('NOT_FOUND', `NFT ${nft} has never been deployed`);
        const deployer = (repo.peekLatest(nft) ?? (await repo.latest(nft)))!.wallet;
        // Made by a previous owner: shown without their system prompt.
        if (!sameWallet(deployer, req.auth!.sub)) return viewForReader(JSON.parse(body) as DeploymentView, deployer, req.auth!.sub);
        return jsonText(200, body);
      },
    }),
    route({
      method: 'DELETE', path: '/deployments/:nft_token_id', rateClass: 'deployment', auth: 'required', signed: true, tags: ['deployments'],
      summary: 'Stop the deployment of an NFT',
      response: v.object({ message: v.string(), status: v.string(), deployment_id: v.string() }),
      async handler(req) {
        const nft = req.params.nft_token_id!;
        if (!(await owns(ctx, req, nft))) throw new ApiError('FORBIDDEN', `This wallet does not own NFT ${nft}`);
        const view = await ask(nft, { type: 'stop' });
        const message = view.status === 'stopped' ? 'Deployment already stopped'
          : view.status === 'failed' ? 'Deployment is not running (it failed)' : 'Deployment stopping';
        return { message, status: view.status, deployment_id: view.deployment_id };
      },
    }),
    route({
      method: 'GET', path: '/deployments', rateClass: 'other', auth: 'required', tags: ['deployments'],
      summary: "The caller's deployments", query: listQuery,
      response: v.object({
        deployments: v.array(deploymentResponse), total: v.number(),
        pagination: v.object({ total: v.number(), limit: v.number(), offset: v.number(), has_more: v.boolean() }),
      }),
      async handler(req) {
        const q = req.query;
        const wallet = req.auth!.sub;
        // Deployments belong to the NFT's current owner: whoever made them, listed by NFTs owned now.
        const nfts = await ownedOf(ctx, wallet, await repo.candidateNfts(wallet));
        const { rows, total } = await repo.list({ nfts, ...q });
        const deployments = rows.map((d) => viewForReader(deploymentView(d), d.wallet, wallet));
        return { deployments, total, pagination: { total, limit: q.limit, offset: q.offset, has_more: q.offset + rows.length < total } };
      },
    }),
  ];
}
