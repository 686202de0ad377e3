import * as v from 'valibot';
import type { AppContext } from '../app-context.js';
import { ApiError } from '../errors.js';
import { route, type RouteDef } from '../server/route.js';
import { ORCHESTRATOR_AUDIENCE } from '../auth/tokens.js';

/** Deployments whose agent can be handed a token (it may already answer while still deploying). */
const LIVE = new Set(['pending', 'deploying', 'running']);

/**
 * Agent-scoped access, on the orchestrator under /v1/agents/{nft}/:
 * - POST /token: a session trades its orchestrator token for a short-lived token that only this
 *   NFT's agent accepts (the one to send to a remote agent, never the orchestrator token);
 * - GET /owner and GET /revocations: what a remote agent asks with its per-deployment credential,
 *   answered for its own NFT only.
 */
export function agentAccessRoutes(ctx: AppContext): RouteDef[] {
  const access = ctx.agentAccess;
  return [
    route({
      method: 'POST', path: '/token', rateClass: 'other', auth: 'required', tags: ['auth', 'agent'],
      summary: 'Exchange the orchestrator access token for a short-lived token accepted only by this NFT\'s agent (audience agent:{nft}); owner only',
      response: v.object({
        access_token: v.string(), token_type: v.literal('Bearer'), expires_in: v.number(), audience: v.string(),
        endpoint_url: v.string(), provider: v.string(),
      }),
      async handler(req) {
        const nft = req.agentNft!;
        req.nft = nft;
        const auth = req.auth!;
        // Only a session token buys an agent token: an agent token must never renew itself.
        if (auth.aud !== ORCHESTRATOR_AUDIENCE) {
          throw new ApiError('UNAUTHORIZED', 'Only an orchestrator access token can be exchanged', { reason: 'wrong_audience', audience: auth.aud ?? null, expected: ORCHESTRATOR_AUDIENCE });
        }
        if (!(await ctx.ownership.owns(auth.sub, nft))) throw new ApiError('FORBIDDEN', `Wallet ${auth.sub} does not own NFT ${nft}`, { nft_token_id: nft });
        const d = await access.latestDeploymentOf(nft);
        if (!d || !LIVE.has(d.status)) throw new ApiError('NOT_FOUND', `No agent is running for NFT ${nft}`, { nft_token_id: nft });
        if (!d.endpoint_url) {
          throw new ApiError('CONFLICT', `The agent of NFT ${nft} has no endpoint yet (deployment is ${d.status}); retry when it is running`, { nft_token_id: nft, status: d.status });
        }
        const t = await access.mintAgentToken({ sub: auth.sub, nft, sid: auth.sid });
        req.log.info({ nft, session_id: auth.sid, audience: t.audience }, 'agent token issued');
        return { access_token: t.token, token_type: 'Bearer' as const, expires_in: t.expiresIn, audience: t.audience, endpoint_url: d.endpoint_url, provider: d.provider };
      },
    }),
    route({
      method: 'GET', path: '/owner', rateClass: 'other', auth: 'none', credential: 'agent', tags: ['agent-link'],
      summary: 'For the remote agent of this NFT (its deployment credential): who owns the NFT now',
      response: v.object({ nft_token_id: v.string(), owner_address: v.nullable(v.string()) }),
      async handler(req) {
        const nft = req.agentNft!;
        req.nft = nft;
        await access.verifyCredential(req.header('authorization'), nft);
        return { nft_token_id: nft, owner_address: (await ctx.ownership.ownerOf(nft)) ?? null };
      },
    }),
    route({
      method: 'GET', path: '/revocations', rateClass: 'other', auth: 'none', credential: 'agent', tags: ['agent-link'],
      summary: 'For the remote agent of this NFT (its deployment credential): the sessions whose agent tokens it must refuse, its cut-off and its public endpoint',
      response: v.object({
        nft_token_id: v.string(), revoked_sessions: v.array(v.string()), not_before: v.nullable(v.number()), endpoint_url: v.nullable(v.string()),
      }),
      async handler(req) {
        const nft = req.agentNft!;
        req.nft = nft;
        const d = await access.verifyCredential(req.header('authorization'), nft);
        return access.revocations(nft, d);
      },
    }),
  ];
}
