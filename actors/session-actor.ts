import { randomBytes } from 'node:crypto';
import { ApiError } from '../src/errors.js';
import {
  REFRESH_TOKEN_TTL_MS, hashRefreshToken, newRefreshToken,
  type SessionStore, type SessionRow,
} from '../src/auth/sessions.js';
import type { ActorKind, Behaviour } from '../src/contracts/actor-kind.js';
import { SESSION_ACTOR, type SessionGrant, type SessionMsg } from '../src/contracts/session-messages.js';

export { SESSION_ACTOR, newSessionId, type SessionGrant, type SessionMsg } from '../src/contracts/session-messages.js';

export interface SessionActorDeps {
  sessions: SessionStore;
  now: () => number;
  randomBytes?: (n: number) => Uint8Array;
  /** told after a revocation is written, so access tokens stop working at once */
  onRevoked?(sid: string, why: string, row: SessionRow): void;
  onOpened?(sid: string): void;
}

/**
 * One actor per auth session: it alone rotates the session's refresh token and revokes it on this
 * node, so a token presented twice at the same moment is seen as reuse by the second, never
 * accepted twice. Its state is the `sessions` row, rebuilt from the store after passivation or a
 * restart. In a cluster another node may hold an actor for the same session: every write is
 * conditional in the store (rotate only from the current hash, revoke once), and whenever the
 * cached row does not give the happy answer, or a write lost, the row is read again and the
 * same rules decide on the fresh row, so the answer is the one a single node would give.
 */
export function sessionActorKind(deps: SessionActorDeps): ActorKind<SessionMsg, SessionGrant | SessionRow | undefined> {
  const random = deps.randomBytes ?? ((n: number) => randomBytes(n));
  return {
    name: SESSION_ACTOR,
    async create(sid): Promise<Behaviour<SessionMsg, SessionGrant | SessionRow | undefined>> {
      let row = await deps.sessions.get(sid);
      const reload = async () => {
        row = await deps.sessions.get(sid);
      };
      const revoke = async (why: string) => {
        if (!row || row.revoked_at !== null) return;
        const at = deps.now();
        if (!(await deps.sessions.revoke(sid, why, at))) {
          // Another node revoked it first: its reason stands (and it told the cluster).
          await reload();
          return;
        }
        row = { ...row, revoked_at: at, revoked_why: why };
        deps.onRevoked?.(sid, why, row);
      };
      /** The answer to a refresh whose hash is not the current one (by the fresh row). */
      const notCurrent = async (msg: Extract<SessionMsg, { type: 'refresh' }>, now: number): Promise<SessionGrant> => {
        if (!row || row.revoked_at !== null) throw invalidRefresh('the session has ended');
        // The immediately previous token, within the grace window: its answer was lost (a
        // network blip, a crash, or two nodes got it at once). Answer it again with the same
        // new token, rotate nothing.
        const prev = await deps.sessions.refreshToken(msg.hash);
        if (prev && prev.session_id === sid && prev.rotated_at !== null && now - prev.rotated_at <= msg.graceMs &&
            hashRefreshToken(msg.next) === row.refresh_hash) {
          return { session: row, refreshToken: msg.next, issuedAt: prev.rotated_at };
        }
        // An older token of this session (or the previous one after the window): someone
        // kept a copy. End the session for both.
        await revoke('refresh_token_reuse');
        throw invalidRefresh('refresh token reuse detected; the session is revoked');
      };
      const refresh = async (msg: Extract<SessionMsg, { type: 'refresh' }>): Promise<SessionGrant> => {
        const now = deps.now();
        // Not the happy path by the cached row: decide on the stored one (another node may have rotated).
        if (!row || row.revoked_at !== null || msg.hash !== row.refresh_hash) {
          await reload();
          if (!row || row.revoked_at !== null || msg.hash !== row.refresh_hash) return notCurrent(msg, now);
        }
        if (now >= row.expires_at) throw invalidRefresh('the refresh token has expired');
        const refreshToken = msg.next;
        const hash = hashRefreshToken(refreshToken);
        const expiresAt = now + REFRESH_TOKEN_TTL_MS;
        if (!(await deps.sessions.rotate(sid, row.refresh_hash, hash, now, expiresAt))) {
          // Another node rotated or revoked it between our read and our write.
          await reload();
          return notCurrent(msg, now);
        }
        row = { ...row, refresh_hash: hash, expires_at: expiresAt };
        return { session: row, refreshToken, issuedAt: now };
      };
      return {
        async receive(msg) {
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
              await deps.sessions.open(next);
              row = next;
              deps.onOpened?.(sid);
              return { session: row, refreshToken, issuedAt: now };
            }
            case 'refresh':
              return refresh(msg);
            case 'revoke':
              await revoke(msg.why);
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
