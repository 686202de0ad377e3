import type { Db } from '../db/database.js';
import { ApiError } from '../errors.js';

/** The UTC day a timestamp falls in, as YYYY-MM-DD (the `chat_usage.day` key). */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The next UTC midnight after a timestamp: when a day's budget starts again. */
export function nextUtcMidnight(ms: number): Date {
  const d = new Date(ms);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1));
}

/**
 * The per-NFT daily chat token budget (PANTHERS_CHAT_DAILY_TOKEN_QUOTA; 0 = off). Usage is
 * summed per UTC day in `chat_usage`. check() runs before a turn, add() after it with the
 * turn's tokens; a turn started under the budget finishes even if it goes past it, and the
 * next one is refused.
 */
export class ChatQuota {
  private readonly read;
  private readonly upsert;
  private readonly prune;
  private lastPrunedDay = '';

  constructor(db: Db, readonly limit: number, private readonly now: () => number = Date.now) {
    this.read = db.prepare('SELECT tokens FROM chat_usage WHERE nft_token_id = ? AND day = ?');
    this.upsert = db.prepare(
      'INSERT INTO chat_usage (nft_token_id, day, tokens) VALUES (?, ?, ?) ON CONFLICT (nft_token_id, day) DO UPDATE SET tokens = tokens + excluded.tokens',
    );
    this.prune = db.prepare('DELETE FROM chat_usage WHERE day < ?');
  }

  get enabled(): boolean {
    return this.limit > 0;
  }

  /** Tokens used by an NFT today (UTC). */
  used(nft: string): number {
    const row = this.read.get(nft, utcDay(this.now())) as { tokens: number } | undefined;
    return row?.tokens ?? 0;
  }

  /** Throws 429 QUOTA_EXCEEDED once today's budget is spent. */
  check(nft: string): void {
    if (!this.enabled) return;
    const now = this.now();
    const used = this.used(nft);
    if (used >= this.limit) {
      const resets = nextUtcMidnight(now);
      throw new ApiError('QUOTA_EXCEEDED', `The daily chat budget of ${this.limit} tokens for this NFT is used up`, {
        limit: this.limit,
        used,
        resets_at: resets.toISOString(),
        retry_after: Math.max(1, Math.ceil((resets.getTime() - now) / 1000)),
      });
    }
  }

  /** Adds a finished turn's tokens to today's usage. */
  add(nft: string, tokens: number): void {
    if (!this.enabled || !(tokens > 0)) return;
    const day = utcDay(this.now());
    this.upsert.run(nft, day, Math.ceil(tokens));
    if (day !== this.lastPrunedDay) {
      // Once a day: older days no longer matter to anyone (keep a week for inspection).
      this.lastPrunedDay = day;
      this.prune.run(utcDay(this.now() - 7 * 86_400_000));
    }
  }
}
