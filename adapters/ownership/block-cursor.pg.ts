import type { Sql } from '../../src/db/pg.js';
import type { BlockCursor } from './evm.js';

/**
 * The `ownership_cursor` row of one log source in PostgreSQL, shared by every node: a block
 * read by one node is not rescanned by another, and the cursor never moves back (greatest).
 */
export function pgBlockCursor(sql: Sql, source: string, now: () => number = Date.now): BlockCursor {
  return {
    get: async () => {
      const [row] = await sql<{ block: number }[]>`SELECT block FROM ownership_cursor WHERE source = ${source}`;
      return row?.block;
    },
    set: async (block) => {
      await sql`INSERT INTO ownership_cursor (source, block, updated_at) VALUES (${source}, ${block}, ${now()})
        ON CONFLICT (source) DO UPDATE SET block = greatest(ownership_cursor.block, excluded.block), updated_at = excluded.updated_at`;
    },
  };
}
