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
import { clusterSecretsKey, loadSecretsKey } from '../deployments/provider-secrets.js';
import type { ChallengeStore } from '../auth/challenge-store.js';
import { SqliteChallengeStore } from '../auth/challenge-store.sqlite.js';
import { PgChallengeStore } from '../auth/challenge-store.pg.js';
import type { SessionStore } from '../auth/session-store.js';
import { SqliteSessionStore } from '../auth/session-store.sqlite.js';
import { PgSessionStore } from '../auth/session-store.pg.js';
import type { AgentGrantStore } from '../auth/agent-grant-store.js';
import { SqliteAgentGrantStore } from '../auth/agent-grant-store.sqlite.js';
import { PgAgentGrantStore } from '../auth/agent-grant-store.pg.js';
import type { SecretStore } from '../auth/secret-store.js';
import { FileSecretStore } from '../auth/secret-store.file.js';
import { PgSecretStore } from '../auth/secret-store.pg.js';
import type { NftOwnerStore } from '../auth/nft-owner-store.js';
import { SqliteNftOwnerStore } from '../auth/nft-owner-store.sqlite.js';
import { PgNftOwnerStore } from '../auth/nft-owner-store.pg.js';
import type { TransferStore } from '../auth/transfer-store.js';
import { SqliteTransferStore } from '../auth/transfer-store.sqlite.js';
import { PgTransferStore } from '../auth/transfer-store.pg.js';
import type { IdempotencyKeyStore } from '../guards/idempotency-store.js';
import { SqliteIdempotencyStore } from '../guards/idempotency-store.sqlite.js';
import { PgIdempotencyStore } from '../guards/idempotency-store.pg.js';
import type { ReplayStore } from '../guards/replay-store.js';
import { SqliteReplayStore } from '../guards/replay-store.sqlite.js';
import { PgReplayStore } from '../guards/replay-store.pg.js';
import type { QuotaStore } from '../guards/quota-store.js';
import { SqliteQuotaStore } from '../guards/quota-store.sqlite.js';
import { PgQuotaStore } from '../guards/quota-store.pg.js';
import type { BlockCursor } from '../../adapters/ownership/evm.js';
import { sqliteBlockCursor } from '../../adapters/ownership/block-cursor.js';
import { pgBlockCursor } from '../../adapters/ownership/block-cursor.pg.js';
import type { AuditStore } from '../guards/audit-store.js';
import { SqliteAuditStore } from '../guards/audit-store.sqlite.js';
import { PgAuditStore } from '../guards/audit-store.pg.js';

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
  readonly challenges: ChallengeStore;
  readonly sessions: SessionStore;
  readonly agentGrants: AgentGrantStore;
  /** the JWT signing key and the agent-credential key (data dir files, or sealed rows) */
  readonly secrets: SecretStore;
  readonly nftOwners: NftOwnerStore;
  readonly transfers: TransferStore;
  readonly idempotency: IdempotencyKeyStore;
  readonly replay: ReplayStore;
  readonly quota: QuotaStore;
  /** the EVM Transfer-log poller's progress for one log source */
  blockCursor(source: string): BlockCursor;
  /** the hash-chained audit log (reads and direct appends; AuditLog's writer thread opens its own connection) */
  readonly audit: AuditStore;
  /** Flushes pending group commits and closes what this storage opened. */
  close(): Promise<void>;
}

export interface StorageOptions {
  log?: { error(obj: object, msg: string): void };
  now?: () => number;
}

export interface SqliteStorageOptions extends StorageOptions {
  /** an already open database (the app's ctx.db); opened from dataDir otherwise and closed by close() */
  db?: Db;
}

export function openSqliteStorage(dataDir: string, opts: SqliteStorageOptions = {}): Storage & { db: Db } {
  const owned = !opts.db;
  const db = opts.db ?? openDatabase(dataDir);
  const now = opts.now ?? Date.now;
  const conversations = new SqliteConversationsStore(db, opts.log);
  const quota = new SqliteQuotaStore(db);
  return {
    kind: 'sqlite',
    db,
    deployments: new SqliteDeploymentsStore(db),
    conversations,
    providerSecrets: new SqliteProviderSecretsStore(db, dataDir),
    challenges: new SqliteChallengeStore(db),
    sessions: new SqliteSessionStore(db),
    agentGrants: new SqliteAgentGrantStore(db),
    secrets: new FileSecretStore(dataDir),
    nftOwners: new SqliteNftOwnerStore(db),
    transfers: new SqliteTransferStore(db),
    idempotency: new SqliteIdempotencyStore(db),
    replay: new SqliteReplayStore(db),
    quota,
    blockCursor: (source) => sqliteBlockCursor(db, source, now),
    audit: new SqliteAuditStore(db),
    async close() {
      if (db.open) await conversations.flush();
      quota.flush();
      if (owned && db.open) db.close();
    },
  };
}

export interface PgStorageOptions extends StorageOptions {
  /** the node's data dir (key files that must not live in the database) */
  dataDir: string;
  /**
   * PANTHERS_CLUSTER_SECRET: seals the shared signing keys in `node_secrets`. Required to read
   * or create them (a node without it refuses at start, when TokenService asks for the key).
   */
  clusterSecret?: string;
  /** cross-node cache invalidation (cluster mode: NATS) */
  invalidations?: Invalidations;
  /** close the pool on close() (default false: the cluster node owns it) */
  ownsSql?: boolean;
}

/** The secrets of a PostgreSQL storage opened without a cluster secret: refused with the reason. */
const missingClusterSecret: SecretStore = {
  getOrCreate: async () => {
    throw new Error('PANTHERS_CLUSTER_SECRET is required in cluster mode: it seals the signing keys every node shares (docs/cluster.md)');
  },
};

export function openPgStorage(sql: Sql, opts: PgStorageOptions): Storage & { sql: Sql } {
  let keys: Buffer[] | undefined;
  const now = opts.now ?? Date.now;
  const conversations = new PgConversationsStore(sql, opts.log);
  return {
    kind: 'postgres',
    sql,
    deployments: new PgDeploymentsStore(sql, { invalidations: opts.invalidations }),
    conversations,
    // With the cluster secret, one key for every node (a new owner opens what the old one sealed);
    // the data dir's key file still opens rows sealed before (and is the key without the secret).
    providerSecrets: new PgProviderSecretsStore(sql, () => (keys ??= opts.clusterSecret !== undefined
      ? [clusterSecretsKey(opts.clusterSecret), loadSecretsKey(opts.dataDir)]
      : [loadSecretsKey(opts.dataDir)])),
    challenges: new PgChallengeStore(sql),
    sessions: new PgSessionStore(sql),
    agentGrants: new PgAgentGrantStore(sql),
    secrets: opts.clusterSecret !== undefined ? new PgSecretStore(sql, opts.clusterSecret, now) : missingClusterSecret,
    nftOwners: new PgNftOwnerStore(sql),
    transfers: new PgTransferStore(sql),
    idempotency: new PgIdempotencyStore(sql),
    replay: new PgReplayStore(sql),
    quota: new PgQuotaStore(sql),
    blockCursor: (source) => pgBlockCursor(sql, source, now),
    audit: new PgAuditStore(sql),
    async close() {
      await conversations.flush();
      if (opts.ownsSql) await sql.end({ timeout: 5 });
    },
  };
}
