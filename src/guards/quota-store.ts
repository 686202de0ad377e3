/** What reserve() found: `ok` when the hold was taken. */
export interface QuotaReserveResult {
  ok: boolean;
  /** tokens used today (before this hold) */
  used: number;
  /** tokens held by turns in progress (before this hold) */
  held: number;
}

/**
 * The per-NFT daily chat token budget: usage summed per UTC day (`chat_usage`) and the holds of
 * turns in progress. `reserve` decides and takes a hold atomically against usage AND every
 * other hold, so concurrent turns (in one process, or on many nodes) never pass the limit
 * together. SQLite (one process): holds live in memory, as before. PostgreSQL: holds are rows
 * (`chat_quota_holds`) with an expiry (the turn deadline), so a node that died mid-turn
 * releases its holds when they expire.
 */
export interface QuotaStore {
  /** Takes a hold of `amount` (id `holdId`, until `expiresAt`) if used + held + amount <= limit and used < limit. */
  reserve(nft: string, day: string, amount: number, limit: number, holdId: string, now: number, expiresAt: number): Promise<QuotaReserveResult>;
  /** A hold without a limit (the budget is off: usage is only counted; a shared store may keep none). */
  hold(nft: string, amount: number, holdId: string, expiresAt: number): void | Promise<void>;
  /** Drops the hold and adds `tokens` to the day's usage, atomically; resolves once the usage is written. */
  settle(nft: string, holdId: string, day: string, tokens: number): Promise<void>;
  used(nft: string, day: string): Promise<number>;
  held(nft: string, now: number): Promise<number>;
  /** Writes settled usage still queued (a store that batches its writes); shutdown calls it. */
  flush?(): void;
  /** Forgets days before `beforeDay`. */
  prune(beforeDay: string): Promise<void>;
}
