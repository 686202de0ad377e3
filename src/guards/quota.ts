import { randomUUID } from 'node:crypto';
import type { Db } from '../db/database.js';
import type { QuotaStore } from './quota-store.js';
import { SqliteQuotaStore } from './quota-store.sqlite.js';
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
 * A turn's hold on the budget: settled once with what the turn really used (0 releases it). The
 * hold is released at once; the promise resolves once the usage is written (never rejects: a
 * failed write is reported to the quota's onError).
 */
export interface QuotaReservation {
  settle(tokens: number): Promise<void>;
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
 * neither used nor held by turns in progress, so concurrent turns cannot all pass (the store
 * decides atomically, across nodes in a cluster). The turn settles its hold with its real count
 * when it ends.
 */
export class ChatQuota {
  private readonly store: QuotaStore;
  private lastPrunedDay = '';

  constructor(
    store: QuotaStore | Db,
    readonly limit: number,
    private readonly now: () => number = Date.now,
    /** how long a hold outlives its turn at most (a node that died mid-turn releases it then) */
    private readonly holdTtlMs = 15 * 60_000,
    private readonly onError: (e: unknown) => void = () => {},
  ) {
    this.store = 'prepare' in store ? new SqliteQuotaStore(store) : store;
  }

  get enabled(): boolean {
    return this.limit > 0;
  }

  /** Tokens used by an NFT today (UTC). */
  used(nft: string): Promise<number> {
    return this.store.used(nft, utcDay(this.now()));
  }

  /** Tokens held by an NFT's turns in progress. */
  reserved(nft: string): Promise<number> {
    return this.store.held(nft, this.now());
  }

  /** Throws 429 QUOTA_EXCEEDED once today's budget is spent. */
  async check(nft: string): Promise<void> {
    if (!this.enabled) return;
    const used = await this.used(nft);
    if (used >= this.limit) throw this.exceeded(`The daily chat budget of ${this.limit} tokens for this NFT is used up`, used, 0);
  }

  /**
   * Admits a turn that may cost up to `cost` tokens, or throws 429 QUOTA_EXCEEDED when that
   * does not fit in today's budget beside what is used and held.
   */
  async reserve(nft: string, cost: number): Promise<QuotaReservation> {
    const amount = Math.max(0, Math.ceil(cost));
    const id = randomUUID();
    const now = this.now();
    if (this.enabled) {
      const r = await this.store.reserve(nft, utcDay(now), amount, this.limit, id, now, now + this.holdTtlMs);
      if (!r.ok) {
        const { used, held } = r;
        if (used >= this.limit) throw this.exceeded(`The daily chat budget of ${this.limit} tokens for this NFT is used up`, used, held);
        throw this.exceeded(
          `This turn may use up to ${amount} tokens, more than the ${Math.max(0, this.limit - used - held)} left of today's ${this.limit}-token budget` +
            (held ? ` (${held} are held by turns in progress)` : ''),
          used, held, amount,
          // Refused only because of holds: those settle within a turn, so retry soon.
          used + amount <= this.limit ? 2 : undefined,
        );
      }
    } else {
      await this.store.hold(nft, amount, id, now + this.holdTtlMs);
    }
    let open = true;
    return {
      settle: (tokens: number) => {
        if (!open) return Promise.resolve();
        open = false;
        const day = utcDay(this.now());
        // SQLite: the hold is dropped here and the usage joins the next group commit;
        // PostgreSQL: one statement.
        const written = this.store.settle(nft, id, day, tokens > 0 ? tokens : 0).catch(this.onError);
        this.pruneOncePerDay(day);
        return written;
      },
    };
  }

  /** Adds a finished turn's tokens to today's usage (no hold). */
  async add(nft: string, tokens: number): Promise<void> {
    if (!(tokens > 0)) return;
    const day = utcDay(this.now());
    await this.store.settle(nft, '', day, tokens);
    this.pruneOncePerDay(day);
  }

  /** Writes the usage still queued (SQLite's group commit): shutdown calls it before closing the database. */
  flush(): void {
    this.store.flush?.();
  }

  private pruneOncePerDay(day: string): void {
    if (day === this.lastPrunedDay) return;
    // Once a day: older days no longer matter to anyone (keep a week for inspection).
    this.lastPrunedDay = day;
    this.store.prune(utcDay(this.now() - 7 * 86_400_000)).catch(this.onError);
  }

  /** Today's usage and budget of an NFT. */
  async usage(nft: string): Promise<UsageView> {
    const now = this.now();
    const [used, held] = await Promise.all([this.used(nft), this.reserved(nft)]);
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
