import type { Db } from '../db/database.js';
import type { ReplayStore } from './replay-store.js';

export class SqliteReplayStore implements ReplayStore {
  private readonly insert;
  private readonly sweepStmt;
  private readonly countStmt;

  constructor(db: Db) {
    this.insert = db.prepare<[string, number]>('INSERT OR IGNORE INTO signature_replay (signature, expires_at) VALUES (?, ?)');
    this.sweepStmt = db.prepare<[number]>('DELETE FROM signature_replay WHERE expires_at < ?');
    this.countStmt = db.prepare<[], number>('SELECT count(*) FROM signature_replay').pluck();
  }

  async remember(signature: string, expiresAt: number): Promise<boolean> {
    return this.insert.run(signature, expiresAt).changes === 1;
  }

  async sweep(nowSec: number): Promise<number> {
    this.sweepStmt.run(nowSec);
    return this.countStmt.get()!;
  }

  async count(): Promise<number> {
    return this.countStmt.get()!;
  }
}
