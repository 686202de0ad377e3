import Database from 'better-sqlite3';
import path from 'node:path';
import { openDatabase, DB_FILE, type Db } from '../../src/db/database.js';
import { openPg, migratePg, type Sql } from '../../src/db/pg.js';
import type { Fence } from '../../src/db/fence.js';
import { shardOf } from '../../src/cluster/shards.js';
import { tempDir } from './server.js';
import type { Postgres } from './engines.js';

/**
 * The two engines a store contract suite runs against, behind one shape: a store, a second store
 * on the same data through another connection ("another node"), and, where fencing is real, a
 * lease this node holds and a way to move it away (another node claimed it: the epoch bumped).
 */
export interface StoreEngine<S> {
  kind: 'sqlite' | 'postgres';
  store: S;
  /** the same data through a second connection */
  second(): S;
  /** PostgreSQL only: the fence of a lease this node ("node-a") holds on the NFT's shard now */
  fenceFor?(nft: string): Promise<Fence>;
  /** PostgreSQL only: another node claims the NFT's shard (epoch + 1) */
  moveLease?(nft: string): Promise<void>;
  close(): Promise<void>;
}

export function sqliteEngine<S>(make: (db: Db, dataDir: string) => S): StoreEngine<S> {
  const dir = tempDir('panthers-store-');
  const db = openDatabase(dir);
  const others: Db[] = [];
  return {
    kind: 'sqlite',
    store: make(db, dir),
    second() {
      const d = new Database(path.join(dir, DB_FILE));
      d.pragma('busy_timeout = 1000');
      others.push(d);
      return make(d, dir);
    },
    async close() {
      for (const d of others) d.close();
      db.close();
    },
  };
}

let dbCounter = 0;

/** A fresh database on the test file's PostgreSQL, migrated to the latest version. */
export async function freshPgDatabase(pg: Postgres): Promise<string> {
  const name = `store_${process.pid}_${++dbCounter}`;
  const admin = openPg(pg.url, { max: 1 });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end({ timeout: 1 });
  }
  return pg.url.replace(/\/postgres$/, `/${name}`);
}

export async function pgEngine<S>(pg: Postgres, make: (sql: Sql, dataDir: string) => S): Promise<StoreEngine<S>> {
  const url = await freshPgDatabase(pg);
  const dir = tempDir('panthers-store-');
  const sql = openPg(url, { max: 4 });
  await migratePg(sql);
  const others: Sql[] = [];
  return {
    kind: 'postgres',
    store: make(sql, dir),
    second() {
      const s = openPg(url, { max: 2 });
      others.push(s);
      return make(s, dir);
    },
    async fenceFor(nft) {
      const shard = shardOf(nft);
      const [r] = await sql<{ epoch: number }[]>`
        UPDATE shard_leases SET owner = 'node-a', epoch = epoch + 1, expires_at = now() + interval '30 seconds'
        WHERE shard = ${shard} RETURNING epoch`;
      return { shard, epoch: r!.epoch, node: 'node-a' };
    },
    async moveLease(nft) {
      await sql`UPDATE shard_leases SET owner = 'node-b', epoch = epoch + 1, expires_at = now() + interval '30 seconds' WHERE shard = ${shardOf(nft)}`;
    },
    async close() {
      for (const s of others) await s.end({ timeout: 1 });
      await sql.end({ timeout: 1 });
    },
  };
}
