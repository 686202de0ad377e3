import { describe, before, after } from 'node:test';
import { startPostgres, type Postgres } from './helpers/engines.js';
import { sqliteEngine, pgEngine } from './helpers/store-engines.js';
import { SqliteDeploymentsStore } from '../src/deployments/deployments-store.sqlite.js';
import { PgDeploymentsStore } from '../src/deployments/deployments-store.pg.js';
import { deploymentsContract } from './stores/deployments.contract.js';

/** The DeploymentsStore contract on a temp SQLite file and on a real PostgreSQL 15. */
let pg: Postgres;
before(async () => {
  pg = await startPostgres();
});
after(() => pg?.stop());

describe('deployments store: SQLite', () => deploymentsContract(async () => sqliteEngine((db) => new SqliteDeploymentsStore(db))));
describe('deployments store: PostgreSQL', () => deploymentsContract(() => pgEngine(pg, (sql) => new PgDeploymentsStore(sql))));
