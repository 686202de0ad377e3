import { openDatabase, type Db } from './database.js';
import type { Sql } from './pg.js';

/**
 * The storage seam: every store the app uses, behind async interfaces, on one engine. SQLite (the
 * default: one process, statements synchronous inside, the promise already resolved) or
 * PostgreSQL (cluster mode: writes an owned actor makes take a Fence). Each store is
 * `src/<domain>/<name>-store.ts` (interface), `.sqlite.ts` and `.pg.ts`, with one contract suite
 * in test/stores/ run against both. Add a store: a field here and a line in each factory.
 */
export interface Storage {
  readonly kind: 'sqlite' | 'postgres';
  /** Flushes pending group commits and closes what this storage opened. */
  close(): Promise<void>;
}

export interface SqliteStorageOptions {
  /** an already open database (the app's ctx.db); opened from dataDir otherwise and closed by close() */
  db?: Db;
}

export function openSqliteStorage(dataDir: string, opts: SqliteStorageOptions = {}): Storage & { db: Db } {
  const owned = !opts.db;
  const db = opts.db ?? openDatabase(dataDir);
  return {
    kind: 'sqlite',
    db,
    async close() {
      if (owned && db.open) db.close();
    },
  };
}

export interface PgStorageOptions {
  /** the node's data dir (key files that must not live in the database) */
  dataDir: string;
  /** close the pool on close() (default false: the cluster node owns it) */
  ownsSql?: boolean;
}

export function openPgStorage(sql: Sql, opts: PgStorageOptions): Storage & { sql: Sql } {
  void opts.dataDir;
  return {
    kind: 'postgres',
    sql,
    async close() {
      if (opts.ownsSql) await sql.end({ timeout: 5 });
    },
  };
}
