import { createHash, createHmac, randomBytes } from 'node:crypto';

/** A refresh token is good for this long after it was issued; each use issues a new one. */
export const REFRESH_TOKEN_TTL_MS = 7 * 24 * 3600_000;

export type { RefreshTokenRow, SessionRow, SessionStore } from './session-store.js';

/** Opaque refresh token: 32 random bytes, base64url. Only its hash is ever stored. */
export function newRefreshToken(random: (n: number) => Uint8Array = randomBytes): string {
  return Buffer.from(random(32)).toString('base64url');
}

/**
 * The refresh token that replaces `token` at rotation: HMAC(rotation key, token). Derived, not
 * random, so a retry with the previous token inside the grace window gets the very same new
 * token back, even after a restart, with only hashes stored.
 */
export function nextRefreshToken(rotationKey: Uint8Array, token: string): string {
  return createHmac('sha256', rotationKey).update(token).digest('base64url');
}

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
