import { describe, before, after } from 'node:test';
import { startPostgres, type Postgres } from './helpers/engines.js';
import { sqliteEngine, pgEngine } from './helpers/store-engines.js';
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
describe('provider secrets store: PostgreSQL', () => providerSecretsContract(() => pgEngine(pg, (sql, dir) => new PgProviderSecretsStore(sql, () => loadSecretsKey(dir)))));
