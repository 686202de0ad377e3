import type { FeatureModule } from '../feature.js';
import { ApiError } from '../errors.js';
import { SignIn } from '../auth/sign-in.js';
import { ACCESS_TOKEN_TTL_SEC, agentAudience } from '../auth/tokens.js';
import { agentAccessRoutes } from '../routes/agent-access.js';
import { agentSignInRoutes } from '../routes/agent-sign-in.js';
import { embeddedEndpointUrl } from '../agents/embedded-endpoint.js';
import { SESSION_ACTOR, newSessionId, type SessionGrant, type SessionMsg } from '../contracts/session-messages.js';

/**
 * Agent-scoped access on the orchestrator: the token exchange, the remote agent's owner and
 * revocation questions (deployment credential), and the embedded agents' own sign-in
 * (/v1/agents/{nft}/auth/challenge and /auth/verify, or the same under Host agent-{nft}.<host>).
 */
/** `panthers.invalidate.agent-cutoff`: `<nft> <ms>`, an NFT's agent tokens issued until then are refused. */
const AGENT_CUTOFF = 'agent-cutoff';

export const agentAccessFeature: FeatureModule = (f) => {
  const { ctx } = f;
  f.addAgentRoutes(agentAccessRoutes(ctx));
  // Cluster mode: an ownership loss here cuts the NFT's agent tokens on every node at once (the
  // cut-off row is the truth; a node that missed the message reads it on its next cache miss).
  ctx.agentAccess.onOwnershipLost((nft, at, remote) => {
    if (!remote) ctx.invalidations.invalidate(AGENT_CUTOFF, `${nft} ${at}`);
  });
  ctx.invalidations.onInvalidate(AGENT_CUTOFF, (key) => {
    const [nft, at] = key.split(' ');
    if (nft && Number(at) > 0) ctx.agentAccess.cutoffChanged(nft, Number(at));
  });

  const signIn = new SignIn({ db: ctx.db, challenges: ctx.storage.challenges, ownership: ctx.ownership, now: ctx.now, publicUrl: () => ctx.config.publicUrl, evmChainId: ctx.config.chainId });
  f.addAgentRoutes(agentSignInRoutes({
    signIn,
    async requireAgent(nft) {
      const d = await ctx.agentAccess.latestDeploymentOf(nft);
      if (!d || d.provider !== 'local' || d.status !== 'running') throw new ApiError('NOT_FOUND', `No agent is running here for NFT ${nft}`, { nft_token_id: nft });
    },
    origin: (nft) => embeddedEndpointUrl(ctx.config, nft),
    async issue(wallet, nft, req) {
      // A session of its own (revocable like any other; no refresh token is handed out), and a
      // token with the agent's audience: the orchestrator API refuses it.
      const grant = await ctx.directory.ask<SessionGrant>(SESSION_ACTOR, newSessionId(), { type: 'open', wallet, nft } satisfies SessionMsg);
      const t = await ctx.tokens.issue({ sub: wallet, nft, sid: grant.session.id, aud: agentAudience(nft) }, ACCESS_TOKEN_TTL_SEC);
      req.log.info({ wallet, nft, session_id: grant.session.id }, 'agent session opened');
      return { access_token: t.token, expires_in: t.expiresIn };
    },
  }));
};
