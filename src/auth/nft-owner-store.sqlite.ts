import type { Db } from '../db/database.js';
import type { NftOwnerRow, NftOwnerStore } from './nft-owner-store.js';

export class SqliteNftOwnerStore implements NftOwnerStore {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      byToken: db.prepare<[string], string>('SELECT owner FROM nft_owners WHERE nft_token_id = ?').pluck(),
      byOwner: db.prepare<[string], string>('SELECT nft_token_id FROM nft_owners WHERE lower(owner) = ? ORDER BY nft_token_id').pluck(),
      all: db.prepare<[], NftOwnerRow>('SELECT nft_token_id, owner, updated_at FROM nft_owners ORDER BY nft_token_id'),
      assign: db.prepare<[string, string, number]>(
        'INSERT INTO nft_owners (nft_token_id, owner, updated_at) VALUES (?, ?, ?) ON CONFLICT (nft_token_id) DO UPDATE SET owner = excluded.owner, updated_at = excluded.updated_at',
      ),
      dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
    };
  }

  async ownerOf(nft: string): Promise<string | undefined> {
    return this.s.byToken.get(nft);
  }

  async ownedBy(walletLower: string): Promise<string[]> {
    return this.s.byOwner.all(walletLower);
  }

  async all(): Promise<NftOwnerRow[]> {
    return this.s.all.all();
  }

  async assign(nft: string, owner: string, at: number): Promise<void> {
    this.s.assign.run(nft, owner, at);
  }

  /** Other connections' commits only: this connection's own writes call invalidate() instead. */
  async version(): Promise<string> {
    return String(this.s.dataVersion.get());
  }
}
