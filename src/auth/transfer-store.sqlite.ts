import type { Db } from '../db/database.js';
import type { TransferStore } from './transfer-store.js';

export class SqliteTransferStore implements TransferStore {
  private readonly wipe;

  constructor(db: Db) {
    const ids = db.prepare<[string, string], string>('SELECT id FROM conversations WHERE nft_token_id = ? AND lower(wallet) <> ?').pluck();
    const delMessages = db.prepare<[string]>('DELETE FROM messages WHERE conversation_id = ?');
    const delConversation = db.prepare<[string]>('DELETE FROM conversations WHERE id = ?');
    this.wipe = db.transaction((nft: string, keep: string) => {
      const all = ids.all(nft, keep);
      for (const id of all) {
        delMessages.run(id);
        delConversation.run(id);
      }
      return all.length;
    }).immediate;
  }

  async wipeConversations(nft: string, keepWalletLower: string): Promise<number> {
    return this.wipe(nft, keepWalletLower);
  }
}
