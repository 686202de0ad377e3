import { randomUUID } from 'node:crypto';
import type { FeatureModule } from '../feature.js';
import { revocationReason } from '../server/live-connections.js';
import type { Config } from '../config.js';
import { ContractSignatures } from '../auth/contract-signature.js';
import { EvmOwnership } from '../../adapters/ownership/evm.js';
import { SessionGuard } from '../auth/session-guard.js';
import { SignIn } from '../auth/sign-in.js';
import { authRoutes } from '../routes/auth.js';
import { sessionActorKind } from '../../actors/session-actor.js';

/**
 * Wallet sign-in: challenge/verify, sessions with rotating refresh tokens (one SessionActor per
 * session), logout, the JWKS, and the request authenticator that refuses tokens of ended sessions.
 */
/** With the evm verifier, smart-contract wallets sign in through the same JSON-RPC node. */
function contractSignatures(config: Config): ContractSignatures | undefined {
  if (config.ownership !== 'evm' || !config.evmRpcUrl || !config.nftContract) return undefined;
  return new ContractSignatures(new EvmOwnership({ rpcUrl: config.evmRpcUrl, contract: config.nftContract, chainId: config.chainId }));
}

export const authFeature: FeatureModule = (f) => {
  const { ctx } = f;
  const sessions = ctx.storage.sessions;
  const guard = new SessionGuard(ctx.tokens, sessions, ctx.agentAccess);
  ctx.actors.register(
    sessionActorKind({
      sessions,
      now: ctx.now,
      onOpened: (sid) => guard.markActive(sid),
      onRevoked: (sid, why, row) => {
        guard.markRevoked(sid);
        // Its open sockets and streams end now, not when their token expires.
        const ended = ctx.live.endSession(sid, revocationReason(why));
        // Cluster mode: every other node drops it from its session cache and ends its sockets too.
        ctx.revocations.broadcast(sid, why);
        ctx.audit.record({
          ts: ctx.now(), requestId: randomUUID(), wallet: row.wallet, nft: row.nft_token_id,
          method: 'EVENT', route: `session revoked: ${why}`, status: 401, ip: '', durationMs: 0,
        });
        ctx.log.info({ session_id: sid, wallet: row.wallet, nft: row.nft_token_id, why, connections_ended: ended }, 'session revoked');
      },
    }),
  );
  ctx.revocations.onRevoked((sid, why) => {
    guard.markRevoked(sid);
    const ended = ctx.live.endSession(sid, revocationReason(why));
    if (ended) ctx.log.info({ session_id: sid, why, connections_ended: ended }, 'session revoked on another node');
  });
  const signIn = new SignIn({
    db: ctx.db,
    challenges: ctx.storage.challenges,
    ownership: ctx.ownership,
    now: ctx.now,
    publicUrl: () => ctx.config.publicUrl,
    allowedOrigins: () => ctx.config.corsOrigins,
    evmChainId: ctx.config.chainId,
    contractSignatures: contractSignatures(ctx.config),
  });
  f.addRoutes(authRoutes({ ctx, signIn, sessions }));
  f.setAuthenticate(guard.authenticate);
};
