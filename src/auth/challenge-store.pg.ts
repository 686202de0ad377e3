import type { Sql } from '../db/pg.js';
import type { ChallengeRow, ChallengeStore } from './challenge-store.js';

/** ChallengeStore on PostgreSQL: each call is one statement (one round trip). */
export class PgChallengeStore implements ChallengeStore {
  constructor(private readonly sql: Sql) {}

  async insert(r: Omit<ChallengeRow, 'used_at'>): Promise<void> {
    await this.sql`INSERT INTO challenges (nonce, wallet, nft_token_id, message, created_at, expires_at)
      VALUES (${r.nonce}, ${r.wallet}, ${r.nft_token_id}, ${r.message}, ${r.created_at}, ${r.expires_at})`;
  }

  async burn(nonce: string, at: number): Promise<ChallengeRow | undefined> {
    // Row lock + READ COMMITTED re-check: a second UPDATE waiting on the first sees used_at set and matches nothing.
    const [row] = await this.sql<ChallengeRow[]>`UPDATE challenges SET used_at = ${at} WHERE nonce = ${nonce} AND used_at IS NULL
      RETURNING nonce, wallet, nft_token_id, message, created_at, expires_at, used_at`;
    return row;
  }

  async prune(before: number): Promise<void> {
    await this.sql`DELETE FROM challenges WHERE expires_at < ${before}`;
  }
}
