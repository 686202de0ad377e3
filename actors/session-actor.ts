import { randomBytes } from 'node:crypto';
import { ApiError } from '../src/errors.js';
import {
  REFRESH_TOKEN_TTL_MS, hashRefreshToken, newRefreshToken,
  type SessionRepository, type SessionRow,
} from '../src/auth/sessions.js';
import type { ActorKind, Behaviour } from '../src/contracts/actor-kind.js';
import { SESSION_ACTOR, type SessionGrant, type SessionMsg } from '../src/contracts/session-messages.js';

export { SESSION_ACTOR, newSessionId, type SessionGrant, type SessionMsg } from '../src/contracts/session-messages.js';

export interface SessionActorDeps {
  sessions: SessionRepository;
  now: () => number;
  randomBytes?: (n: number) => Uint8Array;
  /** told after a revocation is written, so access tokens stop working at once */
  onRevoked?(sid: string, why: string, row: SessionRow): void;
  onOpened?(sid: string): void;
}

/**
 * One actor per auth session: it alone rotates the session's refresh token and revokes it, so a
 * token presented twice at the same moment is seen as reuse by the second, never accepted twice.
 * Its state is the `sessions` row; it is rebuilt from SQLite after passivation or a restart.
 */
export function sessionActorKind(deps: SessionActorDeps): ActorKind<SessionMsg, SessionGrant | SessionRow | undefined> {
  const random = deps.randomBytes ?? ((n: number) => randomBytes(n));
  return {
    name: SESSION_ACTOR,
    create(sid): Behaviour<SessionMsg, SessionGrant | SessionRow | undefined> {
      let row = deps.sessions.get(sid);
      const revoke = (why: string) => {
        if (!row || row.revoked_at !== null) return;
        const at = deps.now();
        deps.sessions.revoke(sid, why, at);
        row = { ...row, revoked_at: at, revoked_why: why };
        deps.onRevoked?.(sid, why, row);
      };
      return {
        receive(msg) {
          switch (msg.type) {
            case 'get':
              return row;
            case 'open': {
              if (row) throw new ApiError('CONFLICT', 'Session already exists');
              const now = deps.now();
              const refreshToken = newRefreshToken(random);
              const next: SessionRow = {
                id: sid, wallet: msg.wallet, nft_token_id: msg.nft, refresh_hash: hashRefreshToken(refreshToken),
                created_at: now, expires_at: now + REFRESH_TOKEN_TTL_MS, revoked_at: null, revoked_why: null,
              };
              deps.sessions.open(next);
              row = next;
              deps.onOpened?.(sid);
              return { session: row, refreshToken, issuedAt: now };
            }
            case 'refresh': {
              if (!row || row.revoked_at !== null) throw invalidRefresh('the session has ended');
              const now = deps.now();
              if (msg.hash !== row.refresh_hash) {
                // The immediately previous token, within the grace window: its answer was lost (a
                // network blip, a crash). Answer it again with the same new token, rotate nothing.
                const prev = deps.sessions.refreshToken(msg.hash);
                if (prev && prev.session_id === sid && prev.rotated_at !== null && now - prev.rotated_at <= msg.graceMs &&
                    hashRefreshToken(msg.next) === row.refresh_hash) {
                  return { session: row, refreshToken: msg.next, issuedAt: prev.rotated_at };
                }
                // An older token of this session (or the previous one after the window): someone
                // kept a copy. End the session for both.
                revoke('refresh_token_reuse');
                throw invalidRefresh('refresh token reuse detected; the session is revoked');
              }
              if (now >= row.expires_at) throw invalidRefresh('the refresh token has expired');
              const refreshToken = msg.next;
              const hash = hashRefreshToken(refreshToken);
              const expiresAt = now + REFRESH_TOKEN_TTL_MS;
              deps.sessions.rotate(sid, row.refresh_hash, hash, now, expiresAt);
              row = { ...row, refresh_hash: hash, expires_at: expiresAt };
              return { session: row, refreshToken, issuedAt: now };
            }
            case 'revoke':
              revoke(msg.why);
              return row;
          }
        },
      };
    },
  };
}

function invalidRefresh(reason: string): ApiError {
  return new ApiError('UNAUTHORIZED', 'Invalid refresh token', { reason });
}
