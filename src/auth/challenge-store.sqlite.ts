import type { Db } from '../db/database.js';
import type { ChallengeRow, ChallengeStore } from './challenge-store.js';

/** ChallengeStore on SQLite: synchronous statements inside, resolved promises outside. */
export class SqliteChallengeStore implements ChallengeStore {
  private readonly insertStmt;
  private readonly burnStmt;
  private readonly pruneStmt;

  constructor(db: Db) {
    this.insertStmt = db.prepare(
      'INSERT INTO challenges (nonce, wallet, nft_token_id, message, created_at, expires_at) VALUES (@nonce, @wallet, @nft_token_id, @message, @created_at, @expires_at)',
    );
    this.burnStmt = db.prepare<[number, string], ChallengeRow>('UPDATE challenges SET used_at = ? WHERE nonce = ? AND used_at IS NULL RETURNING *');
    this.pruneStmt = db.prepare<[number]>('DELETE FROM challenges WHERE expires_at < ?');
  }

  async insert(row: Omit<ChallengeRow, 'used_at'>): Promise<void> {
    this.insertStmt.run(row);
  }

  async burn(nonce: string, at: number): Promise<ChallengeRow | undefined> {
    return this.burnStmt.get(at, nonce);
  }

  async prune(before: number): Promise<void> {
    this.pruneStmt.run(before);
  }
}
