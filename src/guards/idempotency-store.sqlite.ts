import type { Db } from '../db/database.js';
import type { IdempotencyKeyStore, IdempotencyRow } from './idempotency-store.js';

export class SqliteIdempotencyStore implements IdempotencyKeyStore {
  private readonly s;
  private readonly claimTx;

  constructor(db: Db) {
    const s = {
      get: db.prepare<[string, string, string], IdempotencyRow>(
        'SELECT fingerprint, state, boot, status, response, ref, created_at, expires_at FROM idempotency_keys WHERE wallet = ? AND scope = ? AND key = ?',
      ),
      insert: db.prepare('INSERT OR REPLACE INTO idempotency_keys (wallet, scope, key, fingerprint, state, boot, created_at, expires_at) VALUES (?, ?, ?, ?, \'pending\', ?, ?, ?)'),
      ref: db.prepare('UPDATE idempotency_keys SET ref = ? WHERE wallet = ? AND scope = ? AND key = ?'),
      done: db.prepare('UPDATE idempotency_keys SET state = \'done\', status = ?, response = ?, ref = coalesce(?, ref) WHERE wallet = ? AND scope = ? AND key = ?'),
      release: db.prepare('DELETE FROM idempotency_keys WHERE wallet = ? AND scope = ? AND key = ? AND state = \'pending\''),
      purge: db.prepare('DELETE FROM idempotency_keys WHERE expires_at <= ?'),
    };
    this.s = s;
    this.claimTx = db.transaction((w: string, scope: string, key: string, fp: string, boot: string, now: number, expiresAt: number) => {
      const row = s.get.get(w, scope, key);
      if (row && row.expires_at > now) return row;
      s.insert.run(w, scope, key, fp, boot, now, expiresAt);
      return undefined;
    }).immediate;
  }

  async claim(w: string, scope: string, key: string, fp: string, boot: string, now: number, expiresAt: number): Promise<IdempotencyRow | undefined> {
    return this.claimTx(w, scope, key, fp, boot, now, expiresAt);
  }

  async setRef(w: string, scope: string, key: string, ref: string): Promise<void> {
    this.s.ref.run(ref, w, scope, key);
  }

  async complete(w: string, scope: string, key: string, status: number, body: string, ref: string | null): Promise<void> {
    this.s.done.run(status, body, ref, w, scope, key);
  }

  async release(w: string, scope: string, key: string): Promise<void> {
    this.s.release.run(w, scope, key);
  }

  async purge(now: number): Promise<void> {
    this.s.purge.run(now);
  }
}
