import postgres, { type Sql } from 'postgres';
import { PG_MIGRATIONS } from './pg-migrations.js';
import { causeChain } from '../errors.js';

export type { Sql };

/** The advisory lock every schema change takes (ShardLeases.migrate uses the same key). */
export const MIGRATION_LOCK = 7317001;

/**
 * A pool to PostgreSQL (porsager `postgres`): prepared statements, and bigint (ms times, ids,
 * counts, epochs: all below 2^53) parsed to JS numbers so rows look like SQLite's.
 */
export function openPg(url: string, opts: { max?: number; connectTimeoutSec?: number; debug?: (connection: number, query: string) => void } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    ...(opts.connectTimeoutSec ? { connect_timeout: opts.connectTimeoutSec } : {}),
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

/**
 * Socket and client codes (porsager `postgres` passes the socket's errno through, and adds its own
 * CONNECT_TIMEOUT / CONNECTION_*) that mean "PostgreSQL is not reachable right now": down,
 * restarting, or a link resetting. Retrying later can work; a wrong host name (ENOTFOUND) cannot.
 */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'EAI_AGAIN',
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_DESTROYED',
]);

/**
 * SQLSTATEs of a server that is there but cannot serve this connection yet: class 08 (connection
 * exception), shutting down or starting up (57P01-57P03), too many clients (53300), and the
 * serialization/deadlock refusals two nodes migrating at once can meet (40001, 40P01). A wrong
 * password (28P01), an unknown role (28000) or database (3D000), a bad statement: not these.
 */
function unreachableSqlState(code: string): boolean {
  return code.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '40001', '40P01'].includes(code);
}

/**
 * The PostgreSQL error (or one it caused) says the server was unreachable or resetting, not that
 * the configuration is wrong: a node starting then retries instead of exiting.
 */
export function pgUnreachable(e: unknown): boolean {
  for (const x of causeChain(e)) {
    const code = typeof x.code === 'string' ? x.code : undefined;
    if (code && (UNREACHABLE_CODES.has(code) || (/^[0-9A-Z]{5}$/.test(code) && unreachableSqlState(code)))) return true;
  }
  return false;
}

/**
 * porsager `postgres` 3.4.9 (the latest) can throw from a setImmediate after a connection closed
 * with a write still queued: `socket.write` on a null socket in connection.js `nextWrite`
 * (porsager/postgres#1154 and #1208; the guards proposed in #1168, #1176 and #1209 are not
 * released). Thrown from a timer, it escapes every await and would end the process whenever a
 * PostgreSQL link resets (a database restart, a proxy dropping connections). The connection is
 * already closed by then and what waited on it was rejected on the close (the socket's error,
 * CONNECTION_CLOSED, or a transaction's onclose), so the queued bytes are moot: true for exactly
 * that error, for the process's uncaughtException handler to log and go on.
 */
export function isPgClosedSocketWrite(e: unknown): boolean {
  if (!(e instanceof TypeError) || !/\(reading 'write'\)/.test(e.message)) return false;
  const top = (e.stack ?? '').split('\n').slice(1, 3).join('\n');
  return /nextWrite/.test(top) && /[\\/]postgres[\\/](cjs[\\/])?src[\\/]connection\.js/.test(top);
}
