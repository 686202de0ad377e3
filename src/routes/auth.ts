import * as v from 'valibot';
import { issueSigningKey } from '../guards/request-signing.js';
import type { AppContext } from '../app-context.js';
import { ApiError } from '../errors.js';
import { route, type RouteDef } from '../server/route.js';
import { nftTokenId } from '../server/validation.js';
import { ACCESS_TOKEN_TTL_SEC } from '../auth/tokens.js';
import { hashRefreshToken, nextRefreshToken, type SessionStore, type SessionRow } from '../auth/sessions.js';
import type { SignIn } from '../auth/sign-in.js';
import { walletKind } from '../auth/wallet-signature.js';
import { SESSION_ACTOR, newSessionId, type SessionGrant, type SessionMsg } from '../contracts/session-messages.js';

export interface AuthRouteDeps {
  ctx: AppContext;
  signIn: SignIn;
  sessions: SessionStore;
}

const WALLET_MESSAGE = 'must be a 0x EVM address (a valid EIP-55 checksum if mixed case) or a secret1 bech32 address';
export const walletAddress = v.pipe(
  v.string('must be a string'),
  v.trim(),
  // The pattern documents the shape (OpenAPI); the check adds the EIP-55 / bech32 checksums.
  v.regex(/^(0x[0-9a-fA-F]{40}|secret1[02-9ac-hj-np-z]{38}|SECRET1[02-9AC-HJ-NP-Z]{38})$/, WALLET_MESSAGE),
  v.check((s) => walletKind(s) !== undefined, WALLET_MESSAGE),
);

const ChallengeBody = v.object({ wallet_address: walletAddress, nft_token_id: nftTokenId });
const VerifyBody = v.object({
  wallet_address: walletAddress,
  nft_token_id: nftTokenId,
  // Smart-contract wallet signatures (EIP-1271 multisig, EIP-6492 envelopes) run to a few KB.
  signature: v.pipe(v.string('must be a string'), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(16384, 'must be at most 16384 characters')),
  message: v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(4096, 'must be at most 4096 characters')),
  public_key: v.optional(v.pipe(v.string('must be a string'), v.trim(), v.maxLength(128, 'must be at most 128 characters'))),
});
const RefreshBody = v.object({
  refresh_token: v.pipe(v.string('must be a string'), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(256, 'must be at most 256 characters')),
});

const isoTime = (ms: number) => new Date(ms).toISOString();

/** POST /auth/challenge, /auth/verify, /auth/refresh, /auth/logout; GET /auth/session, /.well-known/jwks.json. */
export function authRoutes({ ctx, signIn, sessions }: AuthRouteDeps): RouteDef[] {
  const ask = <R>(sid: string, msg: SessionMsg) => ctx.directory.ask<R>(SESSION_ACTOR, sid, msg);
  const rotationKey = ctx.tokens.deriveSecret('refresh-rotation');

  return [
    route({
      method: 'POST', path: '/auth/challenge', rateClass: 'auth', auth: 'none', tags: ['auth'],
      summary: 'Get a one-time message to sign (EIP-4361; ADR-036 for secret1 wallets)',
      body: ChallengeBody,
      response: v.object({ message: v.string(), nonce: v.string(), expires_at: v.string() }),
      handler(req) {
        req.nft = req.body.nft_token_id;
        return signIn.issueChallenge(req.body, req.header('origin'));
      },
    }),
    route({
      method: 'POST', path: '/auth/verify', rateClass: 'auth', auth: 'none', tags: ['auth'],
      summary: 'Verify a signed challenge and open a session',
      body: VerifyBody,
      response: v.object({ access_token: v.string(), refresh_token: v.string(), expires_in: v.number(), session_id: v.string(), signing_key: v.optional(v.string()) }),
      async handler(req) {
        req.nft = req.body.nft_token_id;
        const { wallet, nft } = await signIn.verifySignedChallenge(req.body, req.header('origin'));
        const grant = await ask<SessionGrant>(newSessionId(), { type: 'open', wallet, nft });
        const access = await ctx.tokens.issue({ sub: wallet, nft, sid: grant.session.id }, ACCESS_TOKEN_TTL_SEC);
        req.log.info({ wallet, nft, session_id: grant.session.id }, 'session opened');
        const body = { access_token: access.token, refresh_token: grant.refreshToken, expires_in: access.expiresIn, session_id: grant.session.id };
        // With signed requests required, the session gets its HMAC key now, shown once.
        return ctx.config.requireSignedRequests ? { ...body, signing_key: await issueSigningKey(sessions, grant.session.id) } : body;
      },
    }),
    route({
      method: 'POST', path: '/auth/refresh', rateClass: 'auth', auth: 'none', tags: ['auth'],
      summary: 'Trade a refresh token for a new access token and a new refresh token (rotation)',
      body: RefreshBody,
      response: v.object({ access_token: v.string(), expires_in: v.number(), refresh_token: v.string() }),
      async handler(req) {
        const token = req.body.refresh_token;
        const hash = hashRefreshToken(token);
        // One read: the session the presented token (current or retired) belongs to.
        const current = await sessions.sessionOfRefreshToken(hash);
        if (!current) throw new ApiError('UNAUTHORIZED', 'Invalid refresh token');
        if (current.revoked_at !== null) throw new ApiError('UNAUTHORIZED', 'Invalid refresh token', { reason: 'the session has ended' });
        const { wallet_address, nft_token_id } = view(current);
        req.nft = nft_token_id;
        // Ownership first, rotation after: an RPC blip (503) leaves the presented token current,
        // so the client's retry is not mistaken for reuse. The NFT may have changed hands since
        // sign-in: a session lives only as long as ownership.
        if (!(await ctx.ownership.owns(wallet_address, nft_token_id))) {
          await ask(current.id, { type: 'revoke', why: 'ownership_lost' });
          await ctx.agentAccess.ownershipLost(nft_token_id);
          throw new ApiError('FORBIDDEN', `Wallet ${wallet_address} no longer owns NFT ${nft_token_id}; the session is revoked`, { nft_token_id });
        }
        const grant = await ask<SessionGrant>(current.id, {
          type: 'refresh', hash, next: nextRefreshToken(rotationKey, token), graceMs: ctx.config.refreshGraceMs,
        });
        const access = await ctx.tokens.issue({ sub: wallet_address, nft: nft_token_id, sid: grant.session.id }, ACCESS_TOKEN_TTL_SEC, grant.issuedAt);
        return { access_token: access.token, expires_in: access.expiresIn, refresh_token: grant.refreshToken };
      },
    }),
    route({
      method: 'POST', path: '/auth/logout', rateClass: 'auth', auth: 'required', tags: ['auth'],
      summary: 'Revoke the current session (its access and refresh tokens stop working at once)',
      response: v.object({ message: v.string() }),
      async handler(req) {
        const sid = req.auth!.sid;
        await ask(sid, { type: 'revoke', why: 'logout' });
        req.log.info({ session_id: sid }, 'session revoked by logout');
        return { message: 'Logged out: the session is revoked' };
      },
    }),
    route({
      method: 'GET', path: '/auth/session', rateClass: 'other', auth: 'required', tags: ['auth'],
      summary: 'The current session',
      response: v.object({
        wallet_address: v.string(), nft_token_id: v.string(), session_id: v.string(), expires_at: v.string(), access_token_expires_at: v.string(),
      }),
      async handler(req) {
        const row = await ask<SessionRow | undefined>(req.auth!.sid, { type: 'get' });
        if (!row || row.revoked_at !== null) throw new ApiError('UNAUTHORIZED', 'The session has ended; sign in again');
        return { ...view(row), access_token_expires_at: isoTime(req.auth!.exp * 1000) };
      },
    }),
    route({
      method: 'GET', path: '/.well-known/jwks.json', rateClass: 'other', auth: 'none', tags: ['auth'],
      summary: 'The public keys that verify access tokens (for agents and other services)',
      response: v.object({ keys: v.array(v.record(v.string(), v.unknown())) }),
      handler: () => ctx.tokens.jwks(),
    }),
  ];
}

function view(row: SessionRow) {
  return { wallet_address: row.wallet, nft_token_id: row.nft_token_id, session_id: row.id, expires_at: isoTime(row.expires_at) };
}
