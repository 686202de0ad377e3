import { describe, before, after } from 'node:test';
import { randomBytes } from 'node:crypto';
import { tempDir } from './server.js';
import { startPostgres, type Postgres } from './engines.js';
import { openDatabase } from '../../src/db/database.js';
import { openPg, migratePg, type Sql } from '../../src/db/pg.js';
import { openSqliteStorage, openPgStorage, type Storage } from '../../src/db/storage.js';

/**
 * One fresh store (a temp SQLite file, or a new PostgreSQL database) that several "nodes" can
 * open: each node() is a separate connection (SQLite) or pool (PostgreSQL) to the same data, so
 * the contract suites can race two of them.
 */
export interface StoreEngine {
  readonly kind: 'sqlite' | 'postgres';
  /** Several processes share this store's state (PostgreSQL). SQLite is one process by design. */
  readonly shared: boolean;
  /** PostgreSQL: the database's URL (what PANTHERS_DATABASE_URL would be) */
  readonly url?: string;
  node(): Storage;
  /** A node whose cluster secret differs (PostgreSQL only). */
  nodeWithSecret(secret: string): Storage;
  /** Runs raw SQL on the store (for checks a contract cannot make through the interface). */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export const CLUSTER_SECRET = 'test-cluster-secret-0123456789abcdef';

export type Contract = (open: () => Promise<StoreEngine>) => void;

let pg: Postgres | undefined;
let pgStarting: Promise<Postgres> | undefined;

/** Runs a contract suite against a temp SQLite file and a real PostgreSQL 15 (one server per test file). */
export function runContract(name: string, contract: Contract): void {
  describe(`${name} on SQLite`, () => contract(openSqliteEngine));
  describe(`${name} on PostgreSQL`, () => {
    before(async () => {
      pg ??= await (pgStarting ??= startPostgres());
    });
    after(() => {
      pg?.stop();
      pg = undefined;
      pgStarting = undefined;
    });
    contract(() => openPgEngine(pg!));
  });
}

export async function openSqliteEngine(): Promise<StoreEngine> {
  const dir = tempDir('panthers-store-');
  const dbs = [openDatabase(dir)];
  const storages: Storage[] = [];
  return {
    kind: 'sqlite',
    shared: false,
    node() {
      const db = storages.length === 0 ? dbs[0]! : openDatabase(dir);
      if (storages.length > 0) dbs.push(db);
      const s = openSqliteStorage(dir, { db });
      storages.push(s);
      return s;
    },
    nodeWithSecret() {
      throw new Error('SQLite keeps secrets in the data dir');
    },
    async query<T>(text: string, params: unknown[] = []) {
      const st = dbs[0]!.prepare(text);
      return (st.reader ? st.all(...params) : (st.run(...params), [])) as T[];
    },
    async close() {
      for (const db of dbs) if (db.open) db.close();
    },
  };
}

export async function openPgEngine(server: Postgres): Promise<StoreEngine> {
  const admin = openPg(server.url, { max: 1 });
  const name = `s_${randomBytes(6).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = server.url.replace(/\/postgres$/, `/${name}`);
  const pools: Sql[] = [];
  const pool = () => {
    const p = openPg(url, { max: 4 });
    pools.push(p);
    return p;
  };
  const main = pool();
  await migratePg(main);
  return {
    kind: 'postgres',
    shared: true,
    url,
    node: () => openPgStorage(pool(), { dataDir: tempDir('panthers-node-'), clusterSecret: CLUSTER_SECRET }),
    nodeWithSecret: (secret) => openPgStorage(pool(), { dataDir: tempDir('panthers-node-'), clusterSecret: secret }),
    async query<T>(text: string, params: unknown[] = []) {
      return [...(await main.unsafe(text, params as never[]))] as T[];
    },
    async close() {
      await Promise.all(pools.map((p) => p.end({ timeout: 1 }).catch(() => {})));
    },
  };
}
