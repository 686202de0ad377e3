import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

export const DB_FILE = 'panthers.db';
/** How long a write waits for another process's lock (the CLI's `nft assign`): it blocks the loop meanwhile. */
export const BUSY_TIMEOUT_MS = 1000;

/**
 * Opens (creating if needed) the one database file in the data dir, in WAL mode, and applies
 * pending migrations. synchronous=NORMAL: in WAL a commit survives a process crash; only an OS
 * crash can lose the last transactions (measured: ~62k single-row commits/s vs ~1k with FULL).
 */
export function openDatabase(dataDir: string, file = DB_FILE): Db {
  fs.mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, file));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  migrate(db);
  return db;
}

/** Applies the migrations the file has not seen yet. Idempotent. Returns the schema version. */
export function migrate(db: Db): number {
  let version = db.pragma('user_version', { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
    version = v + 1;
  }
  return version;
}

/** 'busy': another connection holds the write lock right now (the audit writer thread, a backup). */
export type WriteProbe = 'writable' | 'busy' | 'failed';

/** Whether a write can be committed now (GET /health judges a 'busy' that lasts, and 'failed'). */
export function probeWrite(db: Db): WriteProbe {
  // Probe without waiting on a lock someone else holds: a health check must never block the loop.
  db.pragma('busy_timeout = 0');
  try {
    db.prepare('CREATE TABLE IF NOT EXISTS health_probe (id INTEGER PRIMARY KEY, at INTEGER)').run();
    db.prepare('INSERT OR REPLACE INTO health_probe (id, at) VALUES (1, ?)').run(Date.now());
    return 'writable';
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') ? 'busy' : 'failed';
  } finally {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  }
}
