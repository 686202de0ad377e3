import * as v from 'valibot';
import type { AppContext } from '../app-context.js';
import { ApiError } from '../errors.js';
import { route, type RouteDef } from '../server/route.js';
import { intParam } from '../server/validation.js';
import { walletKind } from '../auth/wallet-signature.js';
import { SECRET_CHAIN_ID } from '../auth/sign-in.js';
import { PROVIDERS } from '../providers/provider.js';
import { VERSION } from '../version.js';
import { DEFAULT_RESOURCES, ESTIMATED_SECONDS } from './deployments.js';

const MODEL_BACKENDS = ['scripted', 'openai', 'ollama'] as const;

const ownerQuery = v.object({
  owner: v.pipe(
    v.string('must be a string'),
    v.trim(),
    v.check((s) => walletKind(s) !== undefined, 'must be a 0x EVM address or a secret1 bech32 address'),
  ),
  limit: intParam(1, 100, 50),
  offset: intParam(0, 1_000_000, 0),
});

/**
 * What the web console (and any other client) needs to know that the spec's routes do not say:
 * how to sign in here, which NFTs a wallet may use, which providers and models a deployment may
 * pick. Each in the spec's error format and the OpenAPI document like every other route.
 */
export function consoleRoutes(ctx: AppContext): RouteDef[] {
  const { config } = ctx;
  return [
    route({
      method: 'GET', path: '/console/config', rateClass: 'other', auth: 'none', tags: ['console'],
      summary: 'How to sign in on this server: chains, ownership source, whether the dev wallet is offered',
      response: v.object({
        version: v.string(), env: v.string(), dev_wallet: v.boolean(), ownership: v.string(), evm_chain_id: v.number(),
        cosmos_chain_id: v.string(), public_url: v.string(), nft_listing: v.boolean(),
      }),
      handler() {
        return {
          version: VERSION,
          env: config.env,
          // Only a development server offers a key kept in the browser: never in test or production.
          dev_wallet: config.env === 'development',
          ownership: ctx.ownership.kind,
          evm_chain_id: config.chainId,
          cosmos_chain_id: SECRET_CHAIN_ID,
          public_url: config.publicUrl,
          nft_listing: ctx.ownership.kind === 'registry' || ctx.ownership.kind === 'evm',
        };
      },
    }),
    route({
      method: 'GET', path: '/nfts', rateClass: 'other', auth: 'none', tags: ['console'],
      summary: 'The NFTs a wallet holds, when the ownership source can list them (registry; ERC-721 Enumerable)',
      query: ownerQuery,
      response: v.object({
        owner: v.string(), enumerable: v.boolean(),
        data: v.array(v.object({ nft_token_id: v.string() })),
        pagination: v.object({ total: v.number(), limit: v.number(), offset: v.number(), has_more: v.boolean() }),
      }),
      async handler(req) {
        const { owner, limit, offset } = req.query;
        // Who holds which token is public on chain; the registry answers the same question.
        const page = await ctx.ownership.listOwned(owner, limit, offset);
        if (!page) {
          return { owner, enumerable: false, data: [], pagination: { total: 0, limit, offset, has_more: false } };
        }
        return {
          owner, enumerable: true,
          data: page.tokens.map((t) => ({ nft_token_id: t })),
          pagination: { total: page.total, limit, offset, has_more: offset + page.tokens.length < page.total },
        };
      },
    }),
    route({
      method: 'GET', path: '/providers', rateClass: 'other', auth: 'required', tags: ['console'],
      summary: 'The deployment providers and models this server is configured for, with resource defaults and limits',
      response: v.object({
        providers: v.array(v.object({ name: v.string(), configured: v.boolean(), missing: v.nullable(v.string()), estimated_time: v.number() })),
        models: v.array(v.object({ id: v.string(), backend: v.string(), default: v.boolean() })),
        resources: v.object({
          defaults: v.object({ cpu: v.number(), memory_mb: v.number(), disk_mb: v.number(), gpu: v.number() }),
          max: v.object({ cpu: v.number(), memory_mb: v.number(), disk_mb: v.number(), gpu: v.number() }),
        }),
      }),
      handler() {
        const providers = PROVIDERS.map((name) => {
          const a = ctx.providers.get(name);
          const missing = a ? a.missingConfig() ?? null : `the ${name} provider is not enabled on this server`;
          return { name, configured: missing === null, missing, estimated_time: ESTIMATED_SECONDS[name] };
        });
        const models = MODEL_BACKENDS.flatMap((backend) => {
          const b = ctx.model(backend);
          return b ? [{ id: `${backend}:${b.defaultModel}`, backend, default: backend === config.model }] : [];
        });
        if (models.length === 0) throw new ApiError('SERVICE_UNAVAILABLE', 'No model backend is configured');
        const d = config.deploy;
        return {
          providers,
          models,
          resources: { defaults: DEFAULT_RESOURCES, max: { cpu: d.maxCpu, memory_mb: d.maxMemoryMb, disk_mb: d.maxDiskMb, gpu: d.maxGpu } },
        };
      },
    }),
  ];
}
