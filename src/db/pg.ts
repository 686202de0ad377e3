import postgres, { type Sql } from 'postgres';
import { PG_MIGRATIONS } from './pg-migrations.js';

export type { Sql };

/**
 * A pool to PostgreSQL (porsager `postgres`): prepared statements, int8 read as a JS number
 * (every bigint here is a millisecond time or a count, far below 2^53), notices not logged.
 */
export function openPg(url: string, max = 10): Sql {
  return postgres(url, {
    max,
    prepare: true,
    onnotice: () => {},
    types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
  }) as unknown as Sql;
}

/** Any number: the lock every node takes to migrate, so two nodes starting at once apply each version once. */
const MIGRATION_LOCK = 7317002;

/** Applies the PostgreSQL migrations not applied yet, each in its own transaction under an advisory lock; returns the version. */
export async function migratePg(sql: Sql): Promise<number> {
  await sql`CREATE TABLE IF NOT EXISTS schema_version (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)`.catch(async (e) => {
    // Two nodes creating it at the same instant: the loser sees a duplicate; the table exists.
    if (!/duplicate|already exists/.test(String(e))) throw e;
  });
  for (;;) {
    const applied = await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      const [row] = await tx<{ version: number }[]>`SELECT version FROM schema_version WHERE id = 1`;
      const v = row?.version ?? 0;
      if (v >= PG_MIGRATIONS.length) return { v, done: true };
      await tx.unsafe(PG_MIGRATIONS[v]!);
      await tx`INSERT INTO schema_version (id, version) VALUES (1, ${v + 1}) ON CONFLICT (id) DO UPDATE SET version = excluded.version`;
      return { v: v + 1, done: false };
    });
    if (applied.done) return applied.v;
  }
}
