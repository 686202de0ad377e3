import type { Sql } from '../db/pg.js';
import type { NftOwnerRow, NftOwnerStore } from './nft-owner-store.js';

export class PgNftOwnerStore implements NftOwnerStore {
  constructor(private readonly sql: Sql) {}

  async ownerOf(nft: string): Promise<string | undefined> {
    const [row] = await this.sql<{ owner: string }[]>`SELECT owner FROM nft_owners WHERE nft_token_id = ${nft}`;
    return row?.owner;
  }

  async ownedBy(walletLower: string): Promise<string[]> {
    const rows = await this.sql<{ nft_token_id: string }[]>`SELECT nft_token_id FROM nft_owners WHERE lower(owner) = ${walletLower} ORDER BY nft_token_id`;
    return rows.map((r) => r.nft_token_id);
  }

  async all(): Promise<NftOwnerRow[]> {
    return [...(await this.sql<NftOwnerRow[]>`SELECT nft_token_id, owner, updated_at FROM nft_owners ORDER BY nft_token_id`)];
  }

  async assign(nft: string, owner: string, at: number): Promise<void> {
    // updated_at only moves forward, so version() (count + latest update) changes on every reassignment.
    await this.sql`INSERT INTO nft_owners (nft_token_id, owner, updated_at) VALUES (${nft}, ${owner}, ${at})
      ON CONFLICT (nft_token_id) DO UPDATE SET owner = excluded.owner,
        updated_at = greatest(excluded.updated_at, (SELECT coalesce(max(updated_at), 0) + 1 FROM nft_owners))`;
  }

  async version(): Promise<string> {
    const [row] = await this.sql<{ n: number; m: number | null }[]>`SELECT count(*)::int AS n, max(updated_at) AS m FROM nft_owners`;
    return `${row!.n}:${row!.m ?? 0}`;
  }
}
