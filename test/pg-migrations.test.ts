import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type Postgres } from './helpers/engines.js';
import { openPg, migratePg, pgVersion, type Sql } from '../src/db/pg.js';
import { PG_MIGRATIONS } from '../src/db/pg-migrations.js';
import { MIGRATIONS } from '../src/db/migrations.js';
import { openDatabase, migrate } from '../src/db/database.js';
import { tempDir } from './helpers/server.js';

/**
 * Both migration lists against real engines: the same version numbers, PostgreSQL from 0 to the
 * latest twice (the second run a no-op) and from two connections at once (the advisory lock makes
 * each migration apply exactly once), and every SQLite table present in PostgreSQL with the same
 * columns (so one store's SQL reads the same shape on either).
 */
let pg: Postgres;
const pools: Sql[] = [];
const pool = (url: string) => {
  const s = openPg(url, { max: 2 });
  pools.push(s);
  return s;
};

before(async () => {
  pg = await startPostgres();
});
after(async () => {
  for (const s of pools) await s.end({ timeout: 1 }).catch(() => {});
  pg?.stop();
});

async function freshDb(name: string): Promise<string> {
  const admin = pool(pg.url);
  await admin.unsafe(`CREATE DATABASE ${name}`);
  return pg.url.replace(/\/postgres$/, `/${name}`);
}

test('both lists have the same version numbers', () => {
  assert.equal(PG_MIGRATIONS.length, MIGRATIONS.length);
  assert.ok(PG_MIGRATIONS.length >= 8);
});

test('PostgreSQL migrates from 0 to the latest, and again as a no-op', async () => {
  const sql = pool(await freshDb('m_twice'));
  assert.equal(await pgVersion(sql), 0);
  assert.equal(await migratePg(sql), PG_MIGRATIONS.length);
  assert.equal(await migratePg(sql), PG_MIGRATIONS.length);
  const rows = await sql<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`;
  assert.deepEqual(rows.map((r) => r.version), PG_MIGRATIONS.map((_, i) => i + 1));
  const [{ n }] = await sql<{ n: number }[]>`SELECT count(*) AS n FROM shard_leases`;
  assert.equal(n, 256);
});

test('two connections migrating at once apply each migration exactly once', async () => {
  const url = await freshDb('m_concurrent');
  const a = pool(url);
  const b = pool(url);
  const [va, vb] = await Promise.all([migratePg(a), migratePg(b)]);
  assert.equal(va, PG_MIGRATIONS.length);
  assert.equal(vb, PG_MIGRATIONS.length);
  const [{ n }] = await a<{ n: number }[]>`SELECT count(*) AS n FROM schema_migrations`;
  assert.equal(n, PG_MIGRATIONS.length);
});

test('every SQLite table and column exists in PostgreSQL', async () => {
  const sql = pool(await freshDb('m_shape'));
  await migratePg(sql);
  const db = openDatabase(tempDir('panthers-mig-'));
  assert.equal(migrate(db), MIGRATIONS.length);
  const tables = db.prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all();
  for (const { name } of tables) {
    const sqliteCols = db.prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${name}')`).all().map((c) => c.name).sort();
    const pgCols = (await sql<{ c: string }[]>`SELECT column_name AS c FROM information_schema.columns WHERE table_name = ${name}`).map((r) => r.c);
    for (const c of sqliteCols) assert.ok(pgCols.includes(c), `${name}.${c} missing in PostgreSQL`);
  }
  db.close();
});

test('bigint columns read back as JS numbers', async () => {
  const sql = pool(await freshDb('m_types'));
  await migratePg(sql);
  await sql`INSERT INTO nft_owners (nft_token_id, owner, updated_at) VALUES ('1', '0xa', ${1_764_000_000_123})`;
  const [r] = await sql<{ updated_at: number; n: number }[]>`SELECT updated_at, (SELECT count(*) FROM nft_owners) AS n FROM nft_owners`;
  assert.equal(r!.updated_at, 1_764_000_000_123);
  assert.equal(r!.n, 1);
});

test('`panthers migrate` migrates PANTHERS_DATABASE_URL (twice: the second a no-op) and a SQLite data dir, printing the version', async () => {
  const { spawnSync } = await import('node:child_process');
  const path = await import('node:path');
  const bin = path.resolve('dist/bin/panthers.js');
  const url = await freshDb('m_cli');
  const run = (env: Record<string, string>, ...args: string[]) => spawnSync(process.execPath, [bin, 'migrate', ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
  const first = run({ PANTHERS_DATABASE_URL: url });
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, new RegExp(`schema version ${PG_MIGRATIONS.length} \\(was 0\\)`));
  const again = run({ PANTHERS_DATABASE_URL: url });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`schema version ${PG_MIGRATIONS.length}, latest`));
  const status = run({}, '--status', '--database-url', url);
  assert.match(status.stdout, new RegExp(`schema version ${PG_MIGRATIONS.length}`));
  const dir = tempDir('panthers-mig-cli-');
  const lite = run({ PANTHERS_DATA_DIR: dir, PANTHERS_DATABASE_URL: '' });
  assert.equal(lite.status, 0, lite.stderr);
  assert.match(lite.stdout, new RegExp(`^sqlite .*panthers\\.db: schema version ${MIGRATIONS.length} \\(was 0\\)`));
  const bad = run({ PANTHERS_DATABASE_URL: `postgres://panthers:secret@127.0.0.1:${pg.port}/nope` });
  assert.equal(bad.status, 1);
  assert.doesNotMatch(bad.stdout + bad.stderr, /secret/);
});
