import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type Postgres } from './helpers/engines.js';
import { sqliteEngine, pgEngine, freshPgDatabase } from './helpers/store-engines.js';
import { tempDir } from './helpers/server.js';
import { openPg, migratePg } from '../src/db/pg.js';
import { openPgStorage } from '../src/db/storage.js';
import { SqliteProviderSecretsStore } from '../src/deployments/provider-secrets-store.sqlite.js';
import { PgProviderSecretsStore } from '../src/deployments/provider-secrets-store.pg.js';
import { loadSecretsKey } from '../src/deployments/provider-secrets.js';
import { providerSecretsContract } from './stores/provider-secrets.contract.js';

/** The ProviderSecretsStore contract on a temp SQLite file and on a real PostgreSQL 15. */
let pg: Postgres;
before(async () => {
  pg = await startPostgres();
});
after(() => pg?.stop());

describe('provider secrets store: SQLite', () => providerSecretsContract(async () => sqliteEngine((db, dir) => new SqliteProviderSecretsStore(db, dir))));
describe('provider secrets store: PostgreSQL', () => providerSecretsContract(() => pgEngine(pg, (sql, dir) => new PgProviderSecretsStore(sql, () => [loadSecretsKey(dir)]))));

/**
 * Cluster mode: nodes with their own data dirs (separate machines) and the same
 * PANTHERS_CLUSTER_SECRET open what another node sealed. The node taking an NFT over needs the
 * Akash manifest the previous owner saved, or it closes that deployment and creates a second one
 * (issue 17g: the SIGSTOP fault scenario).
 */
describe('provider secrets store: PostgreSQL across nodes', () => {
  const SECRET = 'k'.repeat(40);
  test('a node with another data dir and the same cluster secret opens what one node sealed; another secret does not', async () => {
    const url = await freshPgDatabase(pg);
    const sql = openPg(url, { max: 4 });
    try {
      await migratePg(sql);
      const a = openPgStorage(sql, { dataDir: tempDir('panthers-node-a-'), clusterSecret: SECRET });
      const b = openPgStorage(sql, { dataDir: tempDir('panthers-node-b-'), clusterSecret: SECRET });
      const other = openPgStorage(sql, { dataDir: tempDir('panthers-node-c-'), clusterSecret: 'z'.repeat(40) });
      await a.providerSecrets.set('dep-1', '{"dseq":"1","manifest":"m"}');
      assert.equal(await b.providerSecrets.get('dep-1'), '{"dseq":"1","manifest":"m"}');
      assert.equal(await other.providerSecrets.get('dep-1'), undefined, 'another cluster secret does not open it');
      const raw = await sql<{ value: Buffer }[]>`SELECT value FROM deployment_secrets WHERE deployment_id = 'dep-1'`;
      assert.ok(!raw[0]!.value.toString('latin1').includes('manifest'), 'sealed in the database');
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  test('a row sealed under the data dir key file (before the cluster secret) still opens on that node', async () => {
    const url = await freshPgDatabase(pg);
    const sql = openPg(url, { max: 4 });
    try {
      await migratePg(sql);
      const dir = tempDir('panthers-node-old-');
      await openPgStorage(sql, { dataDir: dir }).providerSecrets.set('dep-2', 'old');
      const upgraded = openPgStorage(sql, { dataDir: dir, clusterSecret: SECRET });
      assert.equal(await upgraded.providerSecrets.get('dep-2'), 'old');
      await upgraded.providerSecrets.set('dep-3', 'new');
      assert.equal(await openPgStorage(sql, { dataDir: tempDir('panthers-node-d-'), clusterSecret: SECRET }).providerSecrets.get('dep-3'), 'new');
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});
