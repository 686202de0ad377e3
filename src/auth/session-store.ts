export interface SessionRow {
  id: string;
  wallet: string;
  nft_token_id: string;
  /** sha256 of the current refresh token */
  refresh_hash: string;
  created_at: number;
  /** when the current refresh token stops working */
  expires_at: number;
  revoked_at: number | null;
  revoked_why: string | null;
}

export interface RefreshTokenRow {
  hash: string;
  session_id: string;
  created_at: number;
  rotated_at: number | null;
}

/**
 * The `sessions` and `refresh_tokens` tables. Writes are made by the SessionActor of a session;
 * in a cluster two nodes may each hold an actor for one session, so every write that decides
 * something is conditional and says whether it won.
 */
export interface SessionStore {
  get(id: string): Promise<SessionRow | undefined>;
  refreshToken(hash: string): Promise<RefreshTokenRow | undefined>;
  /** The session a refresh token (current or retired) was issued for, in one read. */
  sessionOfRefreshToken(hash: string): Promise<SessionRow | undefined>;
  /** Creates a session with its first refresh token, atomically. */
  open(row: Omit<SessionRow, 'revoked_at' | 'revoked_why'>): Promise<void>;
  /**
   * Retires `oldHash` and makes `newHash` current, atomically, only if `oldHash` is still the
   * session's current token and the session is not revoked: false when another node rotated
   * (or revoked) first, and then nothing was written.
   */
  rotate(id: string, oldHash: string, newHash: string, at: number, expiresAt: number): Promise<boolean>;
  /** Revokes once: false when it was already revoked (the first reason stays). */
  revoke(id: string, why: string, at: number): Promise<boolean>;
  /** Sessions of an NFT that still work (not revoked, refresh token not expired). */
  activeForNft(nft: string, now: number): Promise<{ id: string; wallet: string }[]>;
  activeNfts(now: number): Promise<string[]>;
  /** Stores the request-signing key of a session; false when there is no such session. */
  setSigningKey(id: string, key: string): Promise<boolean>;
  /** The request-signing key of a session not revoked; undefined/null when none. */
  signingKey(id: string): Promise<string | null | undefined>;
}
