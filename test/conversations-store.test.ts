import { describe, before, after } from 'node:test';
import { startPostgres, type Postgres } from './helpers/engines.js';
import { sqliteEngine, pgEngine } from './helpers/store-engines.js';
import { SqliteConversationsStore } from '../src/agents/conversations-store.sqlite.js';
import { PgConversationsStore } from '../src/agents/conversations-store.pg.js';
import { conversationsContract } from './stores/conversations.contract.js';

/** The ConversationsStore contract on a temp SQLite file and on a real PostgreSQL 15. */
let pg: Postgres;
before(async () => {
  pg = await startPostgres();
});
after(() => pg?.stop());

describe('conversations store: SQLite', () => conversationsContract(async () => sqliteEngine((db) => new SqliteConversationsStore(db))));
describe('conversations store: PostgreSQL', () => conversationsContract(() => pgEngine(pg, (sql) => new PgConversationsStore(sql))));
