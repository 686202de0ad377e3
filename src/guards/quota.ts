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

/** A turn's hold on the budget: settled once with what the turn really used (0 releases it). */
export interface QuotaReservation {
  settle(tokens: number): void;
}

/** What an NFT's owner sees of its budget (GET /usage on the Agent API). */
export interface UsageView {
  nft_token_id: string;
  day: string;
  tokens_used: number;
  tokens_reserved: number;
  daily_quota: number | null;
  remaining: number | null;
  resets_at: string;
}

/**
 * The per-NFT daily chat token budget (PANTHERS_CHAT_DAILY_TOKEN_QUOTA; 0 = no limit, usage
 * still counted). Usage is summed per UTC day in `chat_usage`. A turn is admitted by reserve()
 * with its worst case (prompt estimate + the max_tokens cap): only when that fits in what is
 * neither used nor held by turns in progress, so concurrent turns cannot all pass. The turn
 * settles its hold with its real count when it ends.
 */
export class ChatQuota {
  private readonly read;
  private readonly upsert;
  private readonly prune;
  private readonly held = new Map<string, number>();
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

  /** Tokens held by an NFT's turns in progress. */
  reserved(nft: string): number {
    return this.held.get(nft) ?? 0;
  }

  /** Throws 429 QUOTA_EXCEEDED once today's budget is spent. */
  check(nft: string): void {
    if (!this.enabled) return;
    const used = this.used(nft);
    if (used >= this.limit) throw this.exceeded(`The daily chat budget of ${this.limit} tokens for this NFT is used up`, used, 0);
  }

  /**
   * Admits a turn that may cost up to `cost` tokens, or throws 429 QUOTA_EXCEEDED when that
   * does not fit in today's budget beside what is used and held.
   */
  reserve(nft: string, cost: number): QuotaReservation {
    const amount = Math.max(0, Math.ceil(cost));
    if (this.enabled) {
      const used = this.used(nft);
      const held = this.reserved(nft);
      if (used >= this.limit) throw this.exceeded(`The daily chat budget of ${this.limit} tokens for this NFT is used up`, used, held);
      if (used + held + amount > this.limit) {
        throw this.exceeded(
          `This turn may use up to ${amount} tokens, more than the ${Math.max(0, this.limit - used - held)} left of today's ${this.limit}-token budget` +
            (held ? ` (${held} are held by turns in progress)` : ''),
          used, held, amount,
          // Refused only because of holds: those settle within a turn, so retry soon.
          used + amount <= this.limit ? 2 : undefined,
        );
      }
    }
    this.held.set(nft, this.reserved(nft) + amount);
    let open = true;
    return {
      settle: (tokens: number) => {
        if (!open) return;
        open = false;
        const left = this.reserved(nft) - amount;
        if (left > 0) this.held.set(nft, left);
        else this.held.delete(nft);
        this.add(nft, tokens);
      },
    };
  }

  /** Adds a finished turn's tokens to today's usage. */
  add(nft: string, tokens: number): void {
    if (!(tokens > 0)) return;
    const day = utcDay(this.now());
    this.upsert.run(nft, day, Math.ceil(tokens));
    if (day !== this.lastPrunedDay) {
      // Once a day: older days no longer matter to anyone (keep a week for inspection).
      this.lastPrunedDay = day;
      this.prune.run(utcDay(this.now() - 7 * 86_400_000));
    }
  }

  /** Today's usage and budget of an NFT. */
  usage(nft: string): UsageView {
    const now = this.now();
    const used = this.used(nft);
    const held = this.reserved(nft);
    return {
      nft_token_id: nft,
      day: utcDay(now),
      tokens_used: used,
      tokens_reserved: held,
      daily_quota: this.enabled ? this.limit : null,
      remaining: this.enabled ? Math.max(0, this.limit - used - held) : null,
      resets_at: nextUtcMidnight(now).toISOString(),
    };
  }

  private exceeded(message: string, used: number, held: number, requested?: number, retryAfter?: number): ApiError {
    const now = this.now();
    const resets = nextUtcMidnight(now);
    return new ApiError('QUOTA_EXCEEDED', message, {
      limit: this.limit,
      used,
      ...(held ? { reserved: held } : {}),
      ...(requested !== undefined ? { requested } : {}),
      resets_at: resets.toISOString(),
      retry_after: retryAfter ?? Math.max(1, Math.ceil((resets.getTime() - now) / 1000)),
    });
  }
}
