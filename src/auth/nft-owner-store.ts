export interface NftOwnerRow {
  nft_token_id: string;
  owner: string;
  updated_at: number;
}

/**
 * The self-hosted ownership registry (`nft_owners`, managed by `panthers nft assign`).
 * `version()` changes whenever the table may have changed (SQLite: PRAGMA data_version, bumped
 * by other connections' commits; PostgreSQL: row count and latest update), so readers can keep
 * a cache and check it cheaply.
 */
export interface NftOwnerStore {
  ownerOf(nft: string): Promise<string | undefined>;
  /** Token ids owned by `walletLower` (compared lower-case). */
  ownedBy(walletLower: string): Promise<string[]>;
  all(): Promise<NftOwnerRow[]>;
  assign(nft: string, owner: string, at: number): Promise<void>;
  version(): Promise<string>;
}
