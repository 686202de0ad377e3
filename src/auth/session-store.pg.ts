import type { Sql } from '../db/pg.js';
import type { RefreshTokenRow, SessionRow, SessionStore } from './session-store.js';

/**
 * SessionStore on PostgreSQL. `rotate` is ONE statement: the conditional UPDATE on the current
 * hash decides; the retired token's mark and the new token's row are written only if it matched.
 * Two nodes rotating the same token: the second waits on the row lock, re-checks (READ
 * COMMITTED), finds another hash and writes nothing.
 */
export class PgSessionStore implements SessionStore {
  constructor(private readonly sql: Sql) {}

  async get(id: string): Promise<SessionRow | undefined> {
    const [row] = await this.sql<SessionRow[]>`SELECT id, wallet, nft_token_id, refresh_hash, created_at, expires_at, revoked_at, revoked_why
      FROM sessions WHERE id = ${id}`;
    return row;
  }

  async refreshToken(hash: string): Promise<RefreshTokenRow | undefined> {
    const [row] = await this.sql<RefreshTokenRow[]>`SELECT hash, session_id, created_at, rotated_at FROM refresh_tokens WHERE hash = ${hash}`;
    return row;
  }

  async sessionOfRefreshToken(hash: string): Promise<SessionRow | undefined> {
    const [row] = await this.sql<SessionRow[]>`SELECT s.id, s.wallet, s.nft_token_id, s.refresh_hash, s.created_at, s.expires_at, s.revoked_at, s.revoked_why
      FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = ${hash}`;
    return row;
  }

  async open(r: Omit<SessionRow, 'revoked_at' | 'revoked_why'>): Promise<void> {
    await this.sql`WITH s AS (
        INSERT INTO sessions (id, wallet, nft_token_id, refresh_hash, created_at, expires_at)
        VALUES (${r.id}, ${r.wallet}, ${r.nft_token_id}, ${r.refresh_hash}, ${r.created_at}, ${r.expires_at}) RETURNING id)
      INSERT INTO refresh_tokens (hash, session_id, created_at) SELECT ${r.refresh_hash}, id, ${r.created_at} FROM s`;
  }

  async rotate(id: string, oldHash: string, newHash: string, at: number, expiresAt: number): Promise<boolean> {
    const [row] = await this.sql<{ n: number }[]>`WITH s AS (
        UPDATE sessions SET refresh_hash = ${newHash}, expires_at = ${expiresAt}
        WHERE id = ${id} AND refresh_hash = ${oldHash} AND revoked_at IS NULL RETURNING id),
      r AS (UPDATE refresh_tokens SET rotated_at = ${at} WHERE hash = ${oldHash} AND rotated_at IS NULL AND EXISTS (SELECT 1 FROM s)),
      i AS (INSERT INTO refresh_tokens (hash, session_id, created_at) SELECT ${newHash}, id, ${at} FROM s)
      SELECT count(*)::int AS n FROM s`;
    return row!.n === 1;
  }

  async revoke(id: string, why: string, at: number): Promise<boolean> {
    const r = await this.sql`UPDATE sessions SET revoked_at = ${at}, revoked_why = ${why} WHERE id = ${id} AND revoked_at IS NULL`;
    return r.count === 1;
  }

  async activeForNft(nft: string, now: number): Promise<{ id: string; wallet: string }[]> {
    return [...(await this.sql<{ id: string; wallet: string }[]>`SELECT id, wallet FROM sessions
      WHERE nft_token_id = ${nft} AND revoked_at IS NULL AND expires_at > ${now}`)];
  }

  async activeNfts(now: number): Promise<string[]> {
    const rows = await this.sql<{ nft_token_id: string }[]>`SELECT DISTINCT nft_token_id FROM sessions WHERE revoked_at IS NULL AND expires_at > ${now}`;
    return rows.map((r) => r.nft_token_id);
  }

  async setSigningKey(id: string, key: string): Promise<boolean> {
    const r = await this.sql`UPDATE sessions SET signing_key = ${key} WHERE id = ${id}`;
    return r.count === 1;
  }

  async signingKey(id: string): Promise<string | null | undefined> {
    const [row] = await this.sql<{ signing_key: string | null }[]>`SELECT signing_key FROM sessions WHERE id = ${id} AND revoked_at IS NULL`;
    return row?.signing_key;
  }
}
