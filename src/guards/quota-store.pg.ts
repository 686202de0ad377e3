import type { Sql } from '../db/pg.js';
import type { QuotaReserveResult, QuotaStore } from './quota-store.js';

/**
 * QuotaStore on PostgreSQL. reserve is one transaction of two pipelined statements (one round
 * trip for both plus BEGIN/COMMIT): the first locks the NFT's usage row of the day (an upsert
 * that changes nothing: ON CONFLICT DO UPDATE takes the row lock, creating the row if needed),
 * so reserves of one NFT queue behind each other across nodes; the second, with a fresh READ
 * COMMITTED snapshot taken after the lock, reads usage and live holds and inserts the hold only
 * if it fits.
 */
export class PgQuotaStore implements QuotaStore {
  constructor(private readonly sql: Sql) {}

  async reserve(nft: string, day: string, amount: number, limit: number, holdId: string, now: number, expiresAt: number): Promise<QuotaReserveResult> {
    const [, rows] = await this.sql.begin((tx) => [
      tx`INSERT INTO chat_usage (nft_token_id, day, tokens) VALUES (${nft}, ${day}, 0)
         ON CONFLICT (nft_token_id, day) DO UPDATE SET tokens = chat_usage.tokens`,
      tx<{ used: number; held: number; ok: number }[]>`WITH u AS (SELECT tokens AS used FROM chat_usage WHERE nft_token_id = ${nft} AND day = ${day}),
         h AS (SELECT coalesce(sum(amount), 0)::bigint AS held FROM chat_quota_holds WHERE nft_token_id = ${nft} AND expires_at > ${now}),
         i AS (INSERT INTO chat_quota_holds (id, nft_token_id, amount, expires_at)
               SELECT ${holdId}, ${nft}, ${amount}, ${expiresAt} FROM u, h WHERE u.used < ${limit} AND u.used + h.held + ${amount} <= ${limit} RETURNING 1)
         SELECT u.used, h.held, (SELECT count(*) FROM i)::int AS ok FROM u, h`,
    ]);
    const r = (rows as unknown as { used: number; held: number; ok: number }[])[0]!;
    return { ok: r.ok === 1, used: Number(r.used), held: Number(r.held) };
  }

  /**
   * Without a limit nobody compares holds: no row, no round trip on the chat path (usage is still
   * counted by settle; /usage then shows no tokens reserved).
   */
  hold(): void {}

  async settle(nft: string, holdId: string, day: string, tokens: number): Promise<void> {
    const t = tokens > 0 ? Math.ceil(tokens) : 0;
    await this.sql`WITH d AS (DELETE FROM chat_quota_holds WHERE id = ${holdId})
      INSERT INTO chat_usage (nft_token_id, day, tokens) SELECT ${nft}, ${day}, ${t} WHERE ${t} > 0
      ON CONFLICT (nft_token_id, day) DO UPDATE SET tokens = chat_usage.tokens + excluded.tokens`;
  }

  async used(nft: string, day: string): Promise<number> {
    const [row] = await this.sql<{ tokens: number }[]>`SELECT tokens FROM chat_usage WHERE nft_token_id = ${nft} AND day = ${day}`;
    return row?.tokens ?? 0;
  }

  async held(nft: string, now: number): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`SELECT coalesce(sum(amount), 0)::bigint AS n FROM chat_quota_holds WHERE nft_token_id = ${nft} AND expires_at > ${now}`;
    return Number(row!.n);
  }

  async prune(beforeDay: string): Promise<void> {
    await this.sql`DELETE FROM chat_usage WHERE day < ${beforeDay}`;
    // Holds of nodes that died mid-turn, long expired.
    await this.sql`DELETE FROM chat_quota_holds WHERE expires_at < ${Date.now() - 86_400_000}`;
  }
}
