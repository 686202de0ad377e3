import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { openDatabase, DB_FILE } from '../src/db/database.js';
import { openPg } from '../src/db/pg.js';
import { SqliteAuditStore } from '../src/guards/audit-store.sqlite.js';
import { PgAuditStore } from '../src/guards/audit-store.pg.js';
import { AuditLog, verifyAuditChain } from '../src/guards/audit-log.js';
import { createLogger } from '../src/logger.js';
import { startPostgres, type Postgres } from './helpers/engines.js';
import { tempDir, CLI } from './helpers/server.js';
import { auditStoreContract } from './stores/audit.contract.js';

/**
 * The audit chain's store (issue 17 item 5): one contract run against a temp SQLite file and a
 * real PostgreSQL 15 (started here), then the writer thread on each store with two writers at
 * once, verified by `panthers audit verify` as a real process against either store.
 */
let pg: Postgres;
let dbs = 0;
const quiet = createLogger({ level: 'silent' });

before(async () => {
  pg = await startPostgres();
});
after(() => pg?.stop());

/** A fresh database on the test's PostgreSQL; its URL. */
async function freshPgDatabase(): Promise<string> {
  const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
  const name = `audit_${process.pid}_${++dbs}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  return pg.url.replace(/\/postgres$/, `/${name}`);
}

auditStoreContract('sqlite', async () => {
  const dir = tempDir('panthers-audit-store-');
  const main = openDatabase(dir);
  const second = new Database(path.join(dir, DB_FILE));
  second.pragma('busy_timeout = 5000');
  return {
    a: new SqliteAuditStore(main, true),
    b: new SqliteAuditStore(second, true),
    exec: async (sql) => void main.exec(sql),
    close: async () => {
      main.close();
      second.close();
    },
  };
});

auditStoreContract('postgres', async () => {
  const url = await freshPgDatabase();
  const sa = openPg(url, { max: 1 });
  const sb = openPg(url, { max: 1 });
  const a = new PgAuditStore(sa);
  const b = new PgAuditStore(sb);
  // Both at once, as two nodes starting together would: the advisory lock serializes them.
  await Promise.all([a.ensureSchema(), b.ensureSchema()]);
  return {
    a, b,
    exec: async (sql) => void (await sa.unsafe(sql)),
    close: async () => {
      await sa.end({ timeout: 1 });
      await sb.end({ timeout: 1 });
    },
  };
});

function cli(env: Record<string, string>, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'audit', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

const entry = (tag: string, i: number) => ({
  ts: Date.now(), requestId: `${tag}-${i}`, wallet: i % 2 ? '0xabc' : undefined, nft: '1', method: 'GET',
  route: '/v1/deployments/:nft_token_id', status: 200, ip: '127.0.0.1', durationMs: i / 7,
});

/** Two AuditLogs (two writer threads, as two nodes or two processes) recording at once. */
async function twoWriters(open: () => AuditLog, perWriter: number): Promise<void> {
  const logs = [open(), open()];
  for (const l of logs) l.start();
  for (let i = 0; i < perWriter; i++) {
    logs[0]!.record(entry('a', i));
    logs[1]!.record(entry('b', i));
    if (i % 250 === 0) await new Promise((r) => setImmediate(r));
  }
  // A graceful stop writes every row recorded before it.
  for (const l of logs) l.stop();
}

test('writer threads on PostgreSQL: two nodes append to one chain; `panthers audit verify` checks it by URL or env', async () => {
  const url = await freshPgDatabase();
  await twoWriters(() => new AuditLog({ databaseUrl: url, log: quiet, intervalMs: 20, batchSize: 200 }), 1500);
  const byFlag = await cli({}, 'verify', '--database-url', url);
  assert.equal(byFlag.code, 0, byFlag.err);
  assert.match(byFlag.out, /audit log intact: 3000 rows verified/);
  const tail = await cli({ PANTHERS_DATABASE_URL: url }, 'tail', '-n', '2');
  assert.equal(tail.code, 0, tail.err);
  assert.deepEqual(tail.out.trim().split('\n').map((l) => JSON.parse(l).id), [2999, 3000]);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`UPDATE audit_log SET route = '/v1/other' WHERE id = 1234`;
    const bad = await cli({ PANTHERS_DATABASE_URL: url }, 'verify');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /TAMPERED at row 1234: row 1234 content does not match its hash/);
  } finally {
    await sql.end({ timeout: 1 });
  }
  const nope = await cli({}, 'verify', '--database-url', 'mysql://x');
  assert.equal(nope.code, 1);
  assert.match(nope.err, /must start with postgres:\/\//);
});

test('writer threads on SQLite: two on one file append to one chain; verify by --data-dir', async () => {
  const dir = tempDir('panthers-audit-two-');
  const db = openDatabase(dir);
  await twoWriters(() => new AuditLog({ db, log: quiet, intervalMs: 20, batchSize: 200 }), 1500);
  assert.deepEqual(verifyAuditChain(db), { ok: true, rows: 3000 });
  db.close();
  const r = await cli({}, 'verify', '--data-dir', dir);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /3000 rows verified/);
});

test('two cluster nodes (real `panthers serve` processes) write one chain in PostgreSQL: every request of each is on it after SIGTERM', async () => {
  const { startEngines, startClusterNodes } = await import('./helpers/cluster.js');
  const engines = await startEngines();
  try {
    const cluster = await startClusterNodes(2, engines);
    const per = 40;
    try {
      await Promise.all(cluster.nodes.map(async (n) => {
        for (let i = 0; i < per; i++) {
          const r = await n.request('GET', '/health', { headers: { 'x-request-id': `${n.nodeId}-${i}` } });
          // What is tested is the audit row; a node whose PostgreSQL/NATS link check is a moment
          // behind answers 503 (seen once on a fresh clone), and that answer is audited too.
          assert.ok(r.status === 200 || r.status === 503, `GET /health: ${r.status}`);
        }
      }));
    } finally {
      // Always: nodes left running would keep this file's process (and node --test) waiting.
      await cluster.stop();
    }
    const r = await cli({ PANTHERS_DATABASE_URL: engines.pg.url }, 'verify');
    assert.equal(r.code, 0, r.err);
    const sql = openPg(engines.pg.url, { max: 1 });
    try {
      const rows = await sql<{ client_request_id: string }[]>`SELECT client_request_id FROM audit_log WHERE client_request_id LIKE 'node-%'`;
      const seen = new Set(rows.map((x) => x.client_request_id));
      for (const n of cluster.nodes) for (let i = 0; i < per; i++) assert.ok(seen.has(`${n.nodeId}-${i}`), `${n.nodeId}-${i} is on the chain`);
    } finally {
      await sql.end({ timeout: 1 });
    }
  } finally {
    engines.stop();
  }
});
