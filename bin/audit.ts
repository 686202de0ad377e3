import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE } from '../src/db/database.js';
import type { AuditRow } from '../src/guards/audit-chain.js';
import type { AuditStore } from '../src/guards/audit-store.js';
import { SqliteAuditStore } from '../src/guards/audit-store.sqlite.js';
import { parseArgs } from './args.js';

export const AUDIT_HELP = `Usage: panthers audit <verify|tail> [options]

  verify              walk the hash chain; exit 0 when intact, 1 naming the first bad row
  tail [-n 20]        print the newest rows (one JSON object a line)
       [--follow]     keep printing rows as they are written
Options:
  --data-dir D        the data directory (default PANTHERS_DATA_DIR or ./data)
  --database-url U    the cluster's PostgreSQL chain instead (default PANTHERS_DATABASE_URL)`;

/**
 * `panthers audit verify|tail`: reads the audit log of a data dir or of the cluster's PostgreSQL
 * (the servers may be running: verify walks one snapshot).
 */
export async function audit(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  // -n is the one short flag; map it onto --n before the shared parser sees it.
  const { flags, positionals } = parseArgs(argv.map((a) => (a === '-n' ? '--n' : a)));
  const [sub] = positionals;
  if (flags.help || !sub) {
    console.log(AUDIT_HELP);
    return flags.help ? 0 : 2;
  }
  if (sub !== 'verify' && sub !== 'tail') {
    console.error(`panthers audit: unknown subcommand "${sub}"\n\n${AUDIT_HELP}`);
    return 2;
  }
  const n = flags.n === undefined ? 20 : Number(flags.n);
  if (!Number.isInteger(n) || n < 0) {
    console.error('panthers audit tail: -n must be a whole number');
    return 2;
  }
  const store = await open(flags, env);
  if (typeof store === 'string') {
    console.error(`panthers audit: ${store}`);
    return 1;
  }
  try {
    if (sub === 'verify') return await verify(store);
    return await tail(store, n, flags.follow === true);
  } catch (e) {
    console.error(`panthers audit: ${(e as Error).message}`);
    return 1;
  } finally {
    await store.close();
  }
}

/** The store to read, or why there is none. An explicit --data-dir wins over the environment's URL. */
async function open(flags: Record<string, string | boolean | undefined>, env: Record<string, string | undefined>): Promise<AuditStore | string> {
  const url = typeof flags['database-url'] === 'string' ? flags['database-url'] : flags['data-dir'] === undefined ? env.PANTHERS_DATABASE_URL : undefined;
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) return 'the database URL must start with postgres://';
    // Loaded only here: every other command starts without the PostgreSQL client.
    const [{ openPg }, { PgAuditStore }] = await Promise.all([import('../src/db/pg.js'), import('../src/guards/audit-store.pg.js')]);
    // Read-only in effect: verify and tail only SELECT.
    return new PgAuditStore(openPg(url, { max: 1 }), true);
  }
  const dataDir = path.resolve(typeof flags['data-dir'] === 'string' ? flags['data-dir'] : env.PANTHERS_DATA_DIR || './data');
  const file = path.join(dataDir, DB_FILE);
  if (!fs.existsSync(file)) return `no database at ${file}`;
  // Read-only: verification must never be the thing that changes the log.
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return new SqliteAuditStore(db, true);
}

async function verify(store: AuditStore): Promise<number> {
  const r = await store.verify();
  if (r.ok) {
    console.log(`audit log intact: ${r.rows} rows verified`);
    return 0;
  }
  console.error(`audit log TAMPERED at row ${r.firstBadId}: ${r.reason} (${r.rows} rows verified before it)`);
  return 1;
}

function format(r: AuditRow): string {
  return JSON.stringify({
    id: r.id, time: new Date(r.ts).toISOString(), request_id: r.request_id, wallet: r.wallet, nft: r.nft_token_id,
    method: r.method, route: r.route, status: r.status, ip: r.client_ip, duration_ms: r.duration_ms,
    // Only when set: the caller's own request id, and how many refused requests an aggregate row counts.
    ...(r.client_request_id ? { client_request_id: r.client_request_id } : {}),
    ...(r.count != null ? { count: r.count } : {}),
    hash: r.hash,
  });
}

async function tail(store: AuditStore, n: number, follow: boolean): Promise<number> {
  const last = await store.tail(n);
  for (const r of last) console.log(format(r));
  if (!follow) return 0;
  let after = last.length ? last[last.length - 1]!.id : (await store.state()).headId;
  let stop = false;
  const onSignal = () => {
    stop = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  while (!stop) {
    for (const r of await store.after(after, 1000)) {
      console.log(format(r));
      after = r.id;
    }
    await new Promise((res) => setTimeout(res, 250));
  }
  return 0;
}
