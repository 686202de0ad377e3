import type { Db } from '../db/database.js';

/** How long an issued sign-in message can be used. */
export const CHALLENGE_TTL_MS = 5 * 60_000;

export interface ChallengeRow {
  nonce: string;
  wallet: string;
  nft_token_id: string;
  message: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/**
 * Issued sign-in messages, by nonce, in the `challenges` table. A nonce is burned by one atomic
 * UPDATE ... WHERE used_at IS NULL, so two concurrent attempts cannot both use it.
 */
export class ChallengeStore {
  private readonly insertStmt;
  private readonly burnStmt;
  private readonly pruneStmt;
  private lastPrune = 0;

  constructor(db: Db, private readonly now: () => number) {
    this.insertStmt = db.prepare(
      'INSERT INTO challenges (nonce, wallet, nft_token_id, message, created_at, expires_at) VALUES (@nonce, @wallet, @nft_token_id, @message, @created_at, @expires_at)',
    );
    this.burnStmt = db.prepare<[number, string], ChallengeRow>('UPDATE challenges SET used_at = ? WHERE nonce = ? AND used_at IS NULL RETURNING *');
    this.pruneStmt = db.prepare<[number]>('DELETE FROM challenges WHERE expires_at < ?');
  }

  insert(row: Omit<ChallengeRow, 'used_at'>): void {
    this.insertStmt.run(row);
    this.pruneAtMostPerMinute();
  }

  /** Marks the nonce used and returns its row; undefined when it was never issued or is already used. */
  burn(nonce: string): ChallengeRow | undefined {
    return this.burnStmt.get(this.now(), nonce);
  }

  /** Expired challenges are useless (a late attempt is refused either way): drop them now and then. */
  private pruneAtMostPerMinute(): void {
    const now = this.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    this.pruneStmt.run(now);
  }
}
