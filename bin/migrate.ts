import path from 'node:path';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { DB_FILE, migrate } from '../src/db/database.js';
import { MIGRATIONS } from '../src/db/migrations.js';
import { openPg, migratePg, pgVersion } from '../src/db/pg.js';
import { envWithFlags, parseArgs } from './args.js';

export const MIGRATE_HELP = `Usage: panthers migrate [--database-url URL] [--data-dir DIR] [--status]

Applies the schema migrations the database has not seen yet and prints its version. With
PANTHERS_DATABASE_URL (or --database-url) set, the PostgreSQL database of a cluster (each
migration once, under an advisory lock, so nodes starting at the same time are safe); otherwise
the SQLite file in the data dir (PANTHERS_DATA_DIR, default ./data). Both lists have the same
version numbers. --status prints the version without migrating. Idempotent.`;

/** The URL without its password, for printing. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the database';
  }
}

export async function migrateCommand(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const { flags, positionals } = parseArgs(argv);
  const statusOnly = flags.status === true;
  delete flags.status;
  if (flags.help || positionals.length > 0) {
    console.log(MIGRATE_HELP);
    return flags.help ? 0 : 2;
  }
  let e: Record<string, string | undefined>;
  try {
    e = envWithFlags(flags, env);
  } catch (err) {
    console.error(`panthers: ${(err as Error).message}\n${MIGRATE_HELP}`);
    return 2;
  }
  const url = e.PANTHERS_DATABASE_URL;
  if (url) {
    const sql = openPg(url, { max: 1 });
    try {
      const before = await pgVersion(sql);
      const after = statusOnly ? before : await migratePg(sql);
      console.log(`postgres ${redact(url)}: schema version ${after}${after !== before ? ` (was ${before})` : ''}, latest ${MIGRATIONS.length}`);
      return 0;
    } catch (err) {
      console.error(`panthers: migrating ${redact(url)} failed: ${(err as Error).message}`);
      return 1;
    } finally {
      await sql.end({ timeout: 5 });
    }
  }
  const dataDir = path.resolve(e.PANTHERS_DATA_DIR || './data');
  const file = path.join(dataDir, DB_FILE);
  if (statusOnly && !fs.existsSync(file)) {
    console.log(`sqlite ${file}: schema version 0, latest ${MIGRATIONS.length}`);
    return 0;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    const before = db.pragma('user_version', { simple: true }) as number;
    const after = statusOnly ? before : migrate(db);
    console.log(`sqlite ${file}: schema version ${after}${after !== before ? ` (was ${before})` : ''}, latest ${MIGRATIONS.length}`);
    return 0;
  } catch (err) {
    console.error(`panthers: migrating ${file} failed: ${(err as Error).message}`);
    return 1;
  } finally {
    db.close();
  }
}
