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
 * Issued sign-in messages, by nonce (`challenges`). `burn` is one atomic
 * `UPDATE ... WHERE used_at IS NULL RETURNING`: of any number of attempts, on any number of
 * nodes, exactly one gets the row.
 */
export interface ChallengeStore {
  insert(row: Omit<ChallengeRow, 'used_at'>): Promise<void>;
  /** Marks the nonce used at `at` and returns its row; undefined when never issued or already used. */
  burn(nonce: string, at: number): Promise<ChallengeRow | undefined>;
  /** Drops challenges that expired before `before` (a late attempt is refused either way). */
  prune(before: number): Promise<void>;
}
