import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE } from '../src/db/database.js';
import { verifyAuditChain, type AuditRow } from '../src/guards/audit-log.js';
import { parseArgs } from './args.js';

export const AUDIT_HELP = `Usage: panthers audit <verify|tail> [options]

  verify              walk the hash chain; exit 0 when intact, 1 naming the first bad row
  tail [-n 20]        print the newest rows (one JSON object a line)
       [--follow]     keep printing rows as they are written
Options:
  --data-dir D        the data directory (default PANTHERS_DATA_DIR or ./data)`;

/** `panthers audit verify|tail`: reads the audit log of a data dir (the server may be running). */
export async function audit(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  // -n is the one short flag; map it onto --n before the shared parser sees it.
  const { flags, positionals } = parseArgs(argv.map((a) => (a === '-n' ? '--n' : a)));
  const [sub] = positionals;
  if (flags.help || !sub) {
    console.log(AUDIT_HELP);
    return flags.help ? 0 : 2;
  }
  const dataDir = path.resolve(typeof flags['data-dir'] === 'string' ? flags['data-dir'] : env.PANTHERS_DATA_DIR || './data');
  const file = path.join(dataDir, DB_FILE);
  if (!fs.existsSync(file)) {
    console.error(`panthers audit: no database at ${file}`);
    return 1;
  }
  // Read-only: verification must never be the thing that changes the log.
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  try {
    if (sub === 'verify') return verify(db);
    if (sub === 'tail') {
      const n = flags.n === undefined ? 20 : Number(flags.n);
      if (!Number.isInteger(n) || n < 0) {
        console.error('panthers audit tail: -n must be a whole number');
        return 2;
      }
      return await tail(db, n, flags.follow === true);
    }
    console.error(`panthers audit: unknown subcommand "${sub}"\n\n${AUDIT_HELP}`);
    return 2;
  } finally {
    db.close();
  }
}

function verify(db: Database.Database): number {
  const r = verifyAuditChain(db);
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

async function tail(db: Database.Database, n: number, follow: boolean): Promise<number> {
  const last = db.prepare('SELECT * FROM (SELECT * FROM audit_log ORDER BY id DESC LIMIT ?) ORDER BY id').all(n) as AuditRow[];
  for (const r of last) console.log(format(r));
  if (!follow) return 0;
  let after = last.length ? last[last.length - 1]!.id : ((db.prepare('SELECT max(id) AS m FROM audit_log').get() as { m: number | null }).m ?? 0);
  const next = db.prepare('SELECT * FROM audit_log WHERE id > ? ORDER BY id LIMIT 1000');
  let stop = false;
  const onSignal = () => {
    stop = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  while (!stop) {
    for (const r of next.all(after) as AuditRow[]) {
      console.log(format(r));
      after = r.id;
    }
    await new Promise((res) => setTimeout(res, 250));
  }
  return 0;
}
