import postgres, { type Sql } from 'postgres';
import { PG_MIGRATIONS } from './pg-migrations.js';

export type { Sql };

/** The advisory lock every schema change takes (ShardLeases.migrate uses the same key). */
export const MIGRATION_LOCK = 7317001;

/**
 * A pool to PostgreSQL (porsager `postgres`): prepared statements, and bigint (ms times, ids,
 * counts, epochs: all below 2^53) parsed to JS numbers so rows look like SQLite's.
 */
export function openPg(url: string, opts: { max?: number; debug?: (connection: number, query: string) => void } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    ...(opts.debug ? { debug: opts.debug } : {}),
    prepare: true,
    onnotice: () => {},
    transform: { undefined: null },
    types: {
      bigint: { to: 20, from: [20], serialize: (x: number | bigint) => String(x), parse: (x: string) => Number(x) },
    },
  });
}

/**
 * Applies the migrations the database has not seen, each in its own transaction under
 * pg_advisory_xact_lock, so nodes starting together apply each exactly once (the others wait,
 * then see it applied). Idempotent. Returns the schema version.
 */
export async function migratePg(sql: Sql): Promise<number> {
  let version = await pgVersion(sql);
  for (let v = version + 1; v <= PG_MIGRATIONS.length; v++) {
    version = await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`;
      const [row] = await tx<{ v: number | null }[]>`SELECT max(version) AS v FROM schema_migrations`;
      const current = row?.v ?? 0;
      if (current >= v) return current;
      await tx.unsafe(PG_MIGRATIONS[v - 1]!);
      await tx`INSERT INTO schema_migrations (version) VALUES (${v})`;
      return v;
    });
  }
  return version;
}

/** The schema version the database is at (0 when never migrated). */
export async function pgVersion(sql: Sql): Promise<number> {
  const [t] = await sql<{ t: string | null }[]>`SELECT to_regclass('schema_migrations') AS t`;
  if (!t?.t) return 0;
  const [row] = await sql<{ v: number | null }[]>`SELECT max(version) AS v FROM schema_migrations`;
  return row?.v ?? 0;
}
