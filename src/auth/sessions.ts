import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Db } from '../db/database.js';

/** A refresh token is good for this long after it was issued; each use issues a new one. */
export const REFRESH_TOKEN_TTL_MS = 7 * 24 * 3600_000;

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

/**
 * SQL for the `sessions` and `refresh_tokens` tables. Writes are made by the SessionActor that
 * owns a session (one mailbox per session, so rotations never race); reads may come from anywhere.
 */
export class SessionRepository {
  private readonly getStmt;
  private readonly refreshStmt;
  private readonly insertSession;
  private readonly insertToken;
  private readonly markRotated;
  private readonly setCurrent;
  private readonly revokeStmt;
  private readonly activeForNftStmt;
  private readonly activeNftsStmt;

  constructor(private readonly db: Db) {
    this.getStmt = db.prepare<[string], SessionRow>(
      'SELECT id, wallet, nft_token_id, refresh_hash, created_at, expires_at, revoked_at, revoked_why FROM sessions WHERE id = ?',
    );
    this.refreshStmt = db.prepare<[string], RefreshTokenRow>('SELECT hash, session_id, created_at, rotated_at FROM refresh_tokens WHERE hash = ?');
    this.insertSession = db.prepare(
      'INSERT INTO sessions (id, wallet, nft_token_id, refresh_hash, created_at, expires_at) VALUES (@id, @wallet, @nft_token_id, @refresh_hash, @created_at, @expires_at)',
    );
    this.insertToken = db.prepare<[string, string, number]>('INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES (?, ?, ?)');
    this.markRotated = db.prepare<[number, string]>('UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ? AND rotated_at IS NULL');
    this.setCurrent = db.prepare<[string, number, string]>('UPDATE sessions SET refresh_hash = ?, expires_at = ? WHERE id = ?');
    this.revokeStmt = db.prepare<[number, string, string]>('UPDATE sessions SET revoked_at = ?, revoked_why = ? WHERE id = ? AND revoked_at IS NULL');
    this.activeForNftStmt = db.prepare<[string, number], { id: string; wallet: string }>(
      'SELECT id, wallet FROM sessions WHERE nft_token_id = ? AND revoked_at IS NULL AND expires_at > ?',
    );
    this.activeNftsStmt = db.prepare<[number], string>('SELECT DISTINCT nft_token_id FROM sessions WHERE revoked_at IS NULL AND expires_at > ?').pluck();
  }

  get(id: string): SessionRow | undefined {
    return this.getStmt.get(id);
  }

  refreshToken(hash: string): RefreshTokenRow | undefined {
    return this.refreshStmt.get(hash);
  }

  /** Creates a session with its first refresh token, in one transaction. */
  open(row: Omit<SessionRow, 'revoked_at' | 'revoked_why'>): void {
    this.db.transaction(() => {
      this.insertSession.run(row);
      this.insertToken.run(row.refresh_hash, row.id, row.created_at);
    })();
  }

  /** Retires the old refresh token and makes the new one current, in one transaction. */
  rotate(id: string, oldHash: string, newHash: string, at: number, expiresAt: number): void {
    this.db.transaction(() => {
      this.markRotated.run(at, oldHash);
      this.insertToken.run(newHash, id, at);
      this.setCurrent.run(newHash, expiresAt, id);
    })();
  }

  /** Sessions of an NFT that still work (not revoked, refresh token not expired). */
  activeForNft(nft: string, now: number): { id: string; wallet: string }[] {
    return this.activeForNftStmt.all(nft, now);
  }

  activeNfts(now: number): string[] {
    return this.activeNftsStmt.all(now);
  }

  revoke(id: string, why: string, at: number): void {
    this.revokeStmt.run(at, why, id);
  }
}
