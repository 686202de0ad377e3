import type { Db } from '../db/database.js';
import type { ChallengeRow, ChallengeStore } from './challenge-store.js';
import { SqliteChallengeStore } from './challenge-store.sqlite.js';

export { CHALLENGE_TTL_MS, type ChallengeRow } from './challenge-store.js';

/**
 * Issued sign-in messages over a ChallengeStore (SQLite or PostgreSQL). A nonce is burned by
 * one atomic UPDATE ... WHERE used_at IS NULL, so two concurrent attempts cannot both use it,
 * on one node or many.
 */
export class Challenges {
  private readonly store: ChallengeStore;
  private lastPrune = 0;

  constructor(store: ChallengeStore | Db, private readonly now: () => number) {
    this.store = 'prepare' in store ? new SqliteChallengeStore(store) : store;
  }

  async insert(row: Omit<ChallengeRow, 'used_at'>): Promise<void> {
    await this.store.insert(row);
    await this.pruneAtMostPerMinute();
  }

  /** Marks the nonce used and returns its row; undefined when it was never issued or is already used. */
  burn(nonce: string): Promise<ChallengeRow | undefined> {
    return this.store.burn(nonce, this.now());
  }

  /** Expired challenges are useless (a late attempt is refused either way): drop them now and then. */
  private async pruneAtMostPerMinute(): Promise<void> {
    const now = this.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    await this.store.prune(now);
  }
}
