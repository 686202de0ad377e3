import { randomUUID } from 'node:crypto';
import type { SessionRow } from '../auth/sessions.js';

/** The kind name of the actor that owns one auth session (actors/session-actor.ts). */
export const SESSION_ACTOR = 'session';

/** Plain data: a session actor may be asked from any node. */
export type SessionMsg =
  | { type: 'open'; wallet: string; nft: string }
  /** `next`: the token that replaces the presented one (nextRefreshToken); graceMs: see the actor */
  | { type: 'refresh'; hash: string; next: string; graceMs: number }
  | { type: 'revoke'; why: string }
  | { type: 'get' };

/** open/refresh: the session and its new refresh token (given to the client once, never stored). */
export interface SessionGrant {
  session: SessionRow;
  refreshToken: string;
  /** when this refresh token was issued: the access token issued with it carries this iat */
  issuedAt: number;
}

/** A new session id (the key of its actor). */
export function newSessionId(): string {
  return randomUUID();
}
