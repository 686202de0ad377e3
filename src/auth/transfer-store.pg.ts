import type { Sql } from '../db/pg.js';
import type { TransferStore } from './transfer-store.js';

/** One statement: the conversations go and their messages with them. */
export class PgTransferStore implements TransferStore {
  constructor(private readonly sql: Sql) {}

  async wipeConversations(nft: string, keepWalletLower: string): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`WITH c AS (
        DELETE FROM conversations WHERE nft_token_id = ${nft} AND lower(wallet) <> ${keepWalletLower} RETURNING id),
      m AS (DELETE FROM messages WHERE conversation_id IN (SELECT id FROM c))
      SELECT count(*)::int AS n FROM c`;
    return row!.n;
  }
}
