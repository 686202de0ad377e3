import type { Db } from '../db/database.js';
import type { QuotaReserveResult, QuotaStore } from './quota-store.js';

/**
 * QuotaStore on SQLite: usage in `chat_usage`, holds in this process's memory (it is the only
 * process): check-and-hold is synchronous, so concurrent turns cannot interleave inside it.
 */
export class SqliteQuotaStore implements QuotaStore {
  private readonly read;
  private readonly upsert;
  private readonly pruneStmt;
  /** nft -> total held; holdId -> [nft, amount] */
  private readonly totals = new Map<string, number>();
  private readonly holds = new Map<string, [string, number]>();

  constructor(db: Db) {
    this.read = db.prepare<[string, string], number>('SELECT tokens FROM chat_usage WHERE nft_token_id = ? AND day = ?').pluck();
    this.upsert = db.prepare<[string, string, number]>(
      'INSERT INTO chat_usage (nft_token_id, day, tokens) VALUES (?, ?, ?) ON CONFLICT (nft_token_id, day) DO UPDATE SET tokens = tokens + excluded.tokens',
    );
    this.pruneStmt = db.prepare<[string]>('DELETE FROM chat_usage WHERE day < ?');
  }

  async reserve(nft: string, day: string, amount: number, limit: number, holdId: string): Promise<QuotaReserveResult> {
    const used = this.read.get(nft, day) ?? 0;
    const held = this.totals.get(nft) ?? 0;
    if (used >= limit || used + held + amount > limit) return { ok: false, used, held };
    this.hold(nft, amount, holdId);
    return { ok: true, used, held };
  }

  hold(nft: string, amount: number, holdId: string): void {
    this.holds.set(holdId, [nft, amount]);
    this.totals.set(nft, (this.totals.get(nft) ?? 0) + amount);
  }

  async settle(nft: string, holdId: string, day: string, tokens: number): Promise<void> {
    const h = this.holds.get(holdId);
    if (h) {
      this.holds.delete(holdId);
      const left = (this.totals.get(nft) ?? 0) - h[1];
      if (left > 0) this.totals.set(nft, left);
      else this.totals.delete(nft);
    }
    if (tokens > 0) this.upsert.run(nft, day, Math.ceil(tokens));
  }

  async used(nft: string, day: string): Promise<number> {
    return this.read.get(nft, day) ?? 0;
  }

  async held(nft: string): Promise<number> {
    return this.totals.get(nft) ?? 0;
  }

  async prune(beforeDay: string): Promise<void> {
    this.pruneStmt.run(beforeDay);
  }
}
