import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
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

describe('conversations store: PostgreSQL guards behind the fence', () => {
  test('two writers appending "the next" message of one conversation at once: the unique (conversation_id, seq) refuses the second', async () => {
    const e = await pgEngine(pg, (sql) => ({ sql, store: new PgConversationsStore(sql) }));
    try {
      const { sql, store } = e.store;
      const id = 'conv-seq';
      await store.appendCommitted(id, 'user', 'one', 1, false, 1);
      // Writer A (a node that has not noticed it lost the shard) holds seq 2 uncommitted...
      const reserved = sql.reserve();
      const a = await reserved;
      await a`BEGIN`;
      await a`INSERT INTO messages (conversation_id, role, content, created_at, seq) VALUES (${id}, 'assistant', 'from A', 2, 2)`;
      // ...writer B computes the same next seq, waits on the index, and fails once A commits.
      const b = e.second().store.appendCommitted(id, 'assistant', 'from B', 1, false, 3);
      await new Promise((r) => setTimeout(r, 200));
      await a`COMMIT`;
      a.release();
      await assert.rejects(b, (err: { code?: string }) => err.code === '23505');
      const rows = await sql<{ content: string; seq: number }[]>`SELECT content, seq FROM messages WHERE conversation_id = ${id} ORDER BY seq`;
      assert.deepEqual(rows.map((r) => [r.content, r.seq]), [['one', 1], ['from A', 2]]);
    } finally {
      await e.close();
    }
  });
});
