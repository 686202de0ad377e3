import type { FeatureModule } from '../feature.js';
import { SessionRepository } from '../auth/sessions.js';
import { SessionGuard } from '../auth/session-guard.js';
import { SignIn } from '../auth/sign-in.js';
import { authRoutes } from '../routes/auth.js';
import { sessionActorKind } from '../../actors/session-actor.js';

/**
 * Wallet sign-in: challenge/verify, sessions with rotating refresh tokens (one SessionActor per
 * session), logout, the JWKS, and the request authenticator that refuses tokens of ended sessions.
 */
export const authFeature: FeatureModule = (f) => {
  const { ctx } = f;
  const sessions = new SessionRepository(ctx.db);
  const guard = new SessionGuard(ctx.tokens, sessions, ctx.agentAccess);
  ctx.actors.register(
    sessionActorKind({
      sessions,
      now: ctx.now,
      onOpened: (sid) => guard.markActive(sid),
      onRevoked: (sid) => guard.markRevoked(sid),
    }),
  );
  const signIn = new SignIn({
    db: ctx.db,
    ownership: ctx.ownership,
    now: ctx.now,
    publicUrl: () => ctx.config.publicUrl,
    evmChainId: ctx.config.chainId,
  });
  f.addRoutes(authRoutes({ ctx, signIn, sessions }));
  f.setAuthenticate(guard.authenticate);
};
