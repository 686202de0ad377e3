import type { Db } from '../db/database.js';
import { WriteBatch, type BatchWriter } from '../db/write-batch.js';
import type { QuotaReserveResult, QuotaStore } from './quota-store.js';

/** Usage settled in this turn of the event loop, not yet written: one row's worth per NFT and day. */
interface PendingUsage {
  nft: string;
  day: string;
  tokens: number;
}

/**
 * QuotaStore on SQLite: usage in `chat_usage`, holds in this process's memory (it is the only
 * process): check-and-hold is synchronous, so concurrent turns cannot interleave inside it.
 *
 * Settled usage joins the connection's group commit (WriteBatch), with the chat rows: what the
 * turns that ended in one turn of the event loop used goes into `chat_usage` in the transaction
 * that stores their replies (issue 15: an upsert committed alone per turn was 4% of the chat
 * path's CPU). Until then it counts from memory, so reserve() and used() see it at once;
 * settle() resolves once it is committed.
 */
export class SqliteQuotaStore implements QuotaStore, BatchWriter {
  private readonly read;
  private readonly upsert;
  private readonly pruneStmt;
  private readonly batch: WriteBatch;
  /** nft -> total held; holdId -> [nft, amount] */
  private readonly totals = new Map<string, number>();
  private readonly holds = new Map<string, [string, number]>();
  /** `${nft} ${day}` -> usage settled and not yet committed */
  private pending = new Map<string, PendingUsage>();
  private waiters: { resolve(): void; reject(e: unknown): void }[] = [];

  constructor(private readonly db: Db) {
    this.batch = WriteBatch.of(db);
    this.read = db.prepare<[string, string], number>('SELECT tokens FROM chat_usage WHERE nft_token_id = ? AND day = ?').pluck();
    this.upsert = db.prepare<[string, string, number]>(
      'INSERT INTO chat_usage (nft_token_id, day, tokens) VALUES (?, ?, ?) ON CONFLICT (nft_token_id, day) DO UPDATE SET tokens = tokens + excluded.tokens',
    );
    this.pruneStmt = db.prepare<[string]>('DELETE FROM chat_usage WHERE day < ?');
  }

  async reserve(nft: string, day: string, amount: number, limit: number, holdId: string): Promise<QuotaReserveResult> {
    const used = this.usedNow(nft, day);
    const held = this.totals.get(nft) ?? 0;
    if (used >= limit || used + held + amount > limit) return { ok: false, used, held };
    this.hold(nft, amount, holdId);
    return { ok: true, used, held };
  }

  hold(nft: string, amount: number, holdId: string): void {
    this.holds.set(holdId, [nft, amount]);
    this.totals.set(nft, (this.totals.get(nft) ?? 0) + amount);
  }

  settle(nft: string, holdId: string, day: string, tokens: number): Promise<void> {
    const h = this.holds.get(holdId);
    if (h) {
      this.holds.delete(holdId);
      const left = (this.totals.get(nft) ?? 0) - h[1];
      if (left > 0) this.totals.set(nft, left);
      else this.totals.delete(nft);
    }
    if (!(tokens > 0)) return Promise.resolve();
    const key = `${nft} ${day}`;
    const p = this.pending.get(key);
    if (p) p.tokens += Math.ceil(tokens);
    else this.pending.set(key, { nft, day, tokens: Math.ceil(tokens) });
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.batch.add(this, 0);
    });
  }

  /** Writes the settled usage queued so far (with every other store's rows on this connection). Also called on shutdown. */
  flush(): void {
    this.batch.flush();
  }

  /** BatchWriter: inside the batch's transaction. */
  writeBatch(): void {
    for (const u of this.pending.values()) this.upsert.run(u.nft, u.day, u.tokens);
  }

  /**
   * BatchWriter: after the transaction. On failure its settles reject, but the usage is not
   * dropped (the tokens were spent, and the batch may have failed for another store's rows): it
   * stays counted from memory and goes with the next batch.
   */
  batchDone(err?: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    if (err === undefined) {
      this.pending = new Map();
      for (const w of waiters) w.resolve();
      return;
    }
    if (this.db.open) this.batch.carry(this);
    else this.pending = new Map();
    for (const w of waiters) w.reject(err);
  }

  async used(nft: string, day: string): Promise<number> {
    return this.usedNow(nft, day);
  }

  private usedNow(nft: string, day: string): number {
    return (this.read.get(nft, day) ?? 0) + (this.pending.get(`${nft} ${day}`)?.tokens ?? 0);
  }

  async held(nft: string): Promise<number> {
    return this.totals.get(nft) ?? 0;
  }

  async prune(beforeDay: string): Promise<void> {
    this.pruneStmt.run(beforeDay);
  }
}
