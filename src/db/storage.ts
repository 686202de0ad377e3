import { openDatabase, type Db } from './database.js';
import type { Sql } from './pg.js';
import type { Invalidations } from './invalidations.js';
import type { DeploymentsStore } from '../deployments/deployments-store.js';
import { SqliteDeploymentsStore } from '../deployments/deployments-store.sqlite.js';
import { PgDeploymentsStore } from '../deployments/deployments-store.pg.js';
import type { ConversationsStore } from '../agents/conversations-store.js';
import { SqliteConversationsStore } from '../agents/conversations-store.sqlite.js';
import { PgConversationsStore } from '../agents/conversations-store.pg.js';
import type { ProviderSecretsStore } from '../deployments/provider-secrets-store.js';
import { SqliteProviderSecretsStore } from '../deployments/provider-secrets-store.sqlite.js';
import { PgProviderSecretsStore } from '../deployments/provider-secrets-store.pg.js';
import { loadSecretsKey } from '../deployments/provider-secrets.js';

/**
 * The storage seam: every store the app uses, behind async interfaces, on one engine. SQLite (the
 * default: one process, statements synchronous inside, the promise already resolved) or
 * PostgreSQL (cluster mode: writes an owned actor makes take a Fence). Each store is
 * `src/<domain>/<name>-store.ts` (interface), `.sqlite.ts` and `.pg.ts`, with one contract suite
 * in test/stores/ run against both. Add a store: a field here and a line in each factory.
 */
export interface Storage {
  readonly kind: 'sqlite' | 'postgres';
  readonly deployments: DeploymentsStore;
  readonly conversations: ConversationsStore;
  readonly providerSecrets: ProviderSecretsStore;
  /** Flushes pending group commits and closes what this storage opened. */
  close(): Promise<void>;
}

export interface StorageOptions {
  log?: { error(obj: object, msg: string): void };
}

export interface SqliteStorageOptions extends StorageOptions {
  /** an already open database (the app's ctx.db); opened from dataDir otherwise and closed by close() */
  db?: Db;
}

export function openSqliteStorage(dataDir: string, opts: SqliteStorageOptions = {}): Storage & { db: Db } {
  const owned = !opts.db;
  const db = opts.db ?? openDatabase(dataDir);
  const conversations = new SqliteConversationsStore(db, opts.log);
  return {
    kind: 'sqlite',
    db,
    deployments: new SqliteDeploymentsStore(db),
    conversations,
    providerSecrets: new SqliteProviderSecretsStore(db, dataDir),
    async close() {
      if (db.open) await conversations.flush();
      if (owned && db.open) db.close();
    },
  };
}

export interface PgStorageOptions extends StorageOptions {
  /** the node's data dir (key files that must not live in the database) */
  dataDir: string;
  /** cross-node cache invalidation (cluster mode: NATS) */
  invalidations?: Invalidations;
  /** close the pool on close() (default false: the cluster node owns it) */
  ownsSql?: boolean;
}

export function openPgStorage(sql: Sql, opts: PgStorageOptions): Storage & { sql: Sql } {
  let key: Buffer | undefined;
  const conversations = new PgConversationsStore(sql, opts.log);
  return {
    kind: 'postgres',
    sql,
    deployments: new PgDeploymentsStore(sql, { invalidations: opts.invalidations }),
    conversations,
    providerSecrets: new PgProviderSecretsStore(sql, () => (key ??= loadSecretsKey(opts.dataDir))),
    async close() {
      await conversations.flush();
      if (opts.ownsSql) await sql.end({ timeout: 5 });
    },
  };
}
