import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { startServer, tempDir, waitFor, CLI, type TestServer } from './helpers/server.js';
import { sessionToken, WALLET_A } from './helpers/guarantees.js';
import { openDatabase, DB_FILE } from '../src/db/database.js';
import { AuditLog, verifyAuditChain, GENESIS_HASH, type AuditRow } from '../src/guards/audit-log.js';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics.js';

let server: TestServer;
let dataDir: string;
let requestIds: string[] = [];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'audit', ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A copy of the stopped server's database to tamper with, so each case starts intact. */
function copyOfData(): { dir: string; db: Database.Database } {
  const dir = tempDir('panthers-audit-copy-');
  fs.copyFileSync(path.join(dataDir, DB_FILE), path.join(dir, DB_FILE));
  return { dir, db: new Database(path.join(dir, DB_FILE)) };
}

before(async () => {
  server = await startServer({ PANTHERS_TRUSTED_PROXIES: '127.0.0.1' });
  dataDir = server.dataDir;
  const { token } = await sessionToken(server, WALLET_A, '777');
  const calls = [
    await server.request('GET', '/v1/health'),
    await server.request('POST', '/v1/auth/challenge', { body: { wallet_address: WALLET_A, nft_token_id: '777' }, token, headers: { 'x-forwarded-for': '203.0.113.5' } }),
    await server.request('GET', '/v1/no-such-thing'),
    await server.request('GET', '/v1/auth/session', { token }),
  ];
  requestIds = calls.map((c) => c.headers.get('x-request-id')!);
  // A WS connection (accepted) and a refused upgrade (no token).
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws?token=${token}`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.close();
  const refused = new WebSocket(`${server.url.replace('http', 'ws')}/ws`);
  await new Promise<void>((resolve) => {
    refused.once('error', () => resolve());
    refused.once('unexpected-response', () => resolve());
  });
  for (let i = 0; i < 6; i++) await server.request('GET', '/health');
});

after(async () => {
  await server?.stop();
});

test('every API call and WS connection is written with all its fields', async () => {
  const rows = await waitFor(() => {
    const r = server.app.ctx.db.prepare('SELECT * FROM audit_log ORDER BY id').all() as AuditRow[];
    return r.length >= 12 ? r : undefined;
  }, 5000) as AuditRow[];
  const byReq = (id: string) => rows.find((r) => r.request_id === id)!;
  const health = byReq(requestIds[0]!);
  assert.equal(health.method, 'GET');
  assert.equal(health.route, '/health');
  assert.equal(health.status, 200);
  assert.equal(health.client_ip, '127.0.0.1');
  assert.ok(health.duration_ms >= 0 && health.duration_ms < 5000);
  assert.ok(Math.abs(health.ts - Date.now()) < 60_000);
  const ch = byReq(requestIds[1]!);
  assert.equal(ch.method, 'POST');
  assert.equal(ch.route, '/auth/challenge');
  assert.equal(ch.wallet, WALLET_A);
  assert.equal(ch.nft_token_id, '777');
  assert.equal(ch.client_ip, '203.0.113.5', 'the client IP through the trusted proxy');
  assert.equal(byReq(requestIds[2]!).status, 404);
  assert.equal(byReq(requestIds[3]!).route, '/auth/session');
  const wsRows = rows.filter((r) => r.method === 'WS');
  assert.deepEqual(wsRows.map((r) => [r.route, r.status, r.wallet]).sort(), [['/ws', 101, WALLET_A], ['/ws', 401, null]].sort());
  assert.equal(wsRows.find((r) => r.status === 101)!.nft_token_id, '777');
  // Chained from the genesis hash, ids consecutive.
  assert.equal(rows[0]!.prev_hash, GENESIS_HASH);
  for (let i = 1; i < rows.length; i++) assert.equal(rows[i]!.prev_hash, rows[i - 1]!.hash);
  assert.deepEqual(verifyAuditChain(server.app.ctx.db), { ok: true, rows: rows.length });
});

test('`panthers audit verify` passes while the server runs, and `audit tail -n 3` prints the newest rows', async () => {
  const v = cli('verify', '--data-dir', dataDir);
  assert.equal(v.code, 0, v.err);
  assert.match(v.out, /intact: \d+ rows verified/);
  const t = cli('tail', '-n', '3', '--data-dir', dataDir);
  assert.equal(t.code, 0, t.err);
  const lines = t.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 3);
  assert.ok(lines[0].id < lines[1].id && lines[1].id < lines[2].id);
  for (const l of lines) assert.ok(l.time && l.method && l.route && l.hash);
});

test('tampering is found by `panthers audit verify` as a real process: edited, deleted, reordered, truncated', async () => {
  await server.stop(); // final flush, WAL checkpointed: the file is complete
  const intact = copyOfData();
  const n = (intact.db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
  intact.db.close();
  assert.ok(n >= 12);
  assert.equal(cli('verify', '--data-dir', intact.dir).code, 0);

  // An edited row (a 404 made to look like a 200).
  const edited = copyOfData();
  edited.db.prepare('UPDATE audit_log SET status = 200 WHERE id = 3').run();
  edited.db.close();
  let r = cli('verify', '--data-dir', edited.dir);
  assert.equal(r.code, 1);
  assert.match(r.err, /TAMPERED at row 3: .*edited/);

  // A row deleted from the middle.
  const deleted = copyOfData();
  deleted.db.prepare('DELETE FROM audit_log WHERE id = 5').run();
  deleted.db.close();
  r = cli('verify', '--data-dir', deleted.dir);
  assert.equal(r.code, 1);
  assert.match(r.err, /TAMPERED at row 6: rows 5\.\.5 are missing/);

  // Two rows' contents swapped (a reorder that keeps ids and hashes in place).
  const swapped = copyOfData();
  const [a, b] = swapped.db.prepare('SELECT * FROM audit_log WHERE id IN (7, 8) ORDER BY id').all() as AuditRow[];
  const put = swapped.db.prepare('UPDATE audit_log SET ts = ?, request_id = ?, method = ?, route = ?, status = ? WHERE id = ?');
  put.run(b!.ts, b!.request_id, b!.method, b!.route, b!.status, 7);
  put.run(a!.ts, a!.request_id, a!.method, a!.route, a!.status, 8);
  swapped.db.close();
  r = cli('verify', '--data-dir', swapped.dir);
  assert.equal(r.code, 1);
  assert.match(r.err, /TAMPERED at row 7/);

  // An edit that recomputes the row's own hash still breaks the link to the next row.
  const rehashed = copyOfData();
  const { chainHash, rowContent } = await import('../src/guards/audit-log.js');
  const row4 = rehashed.db.prepare('SELECT * FROM audit_log WHERE id = 4').get() as AuditRow;
  const forged = { ...row4, status: 204 };
  rehashed.db.prepare('UPDATE audit_log SET status = 204, hash = ? WHERE id = 4').run(chainHash(row4.prev_hash, rowContent(forged)));
  rehashed.db.close();
  r = cli('verify', '--data-dir', rehashed.dir);
  assert.equal(r.code, 1);
  assert.match(r.err, /TAMPERED at row 5: .*does not link/);

  // The last row deleted: the recorded head no longer matches.
  const truncated = copyOfData();
  truncated.db.prepare('DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)').run();
  truncated.db.close();
  r = cli('verify', '--data-dir', truncated.dir);
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`TAMPERED at row ${n}: .*deleted from the end`));
});

test('batched off the request path: record() only queues; one transaction per batch; queue gauge', async () => {
  const dir = tempDir();
  const db = openDatabase(dir);
  const metrics = new Metrics({ defaultMetrics: false });
  const audit = new AuditLog({ db, log: createLogger({ level: 'silent' }), metrics, intervalMs: 50, batchSize: 500 });
  const count = () => (db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
  const entry = (i: number) => ({ ts: Date.now(), requestId: `r${i}`, wallet: undefined, nft: undefined, method: 'GET', route: '/x', status: 200, ip: '127.0.0.1', durationMs: 0.123456 });
  audit.record(entry(0));
  assert.equal(count(), 0, 'nothing written synchronously');
  assert.equal(audit.waiting, 1);
  audit.start();
  await waitFor(() => count() === 1, 2000);
  for (let i = 1; i <= 1200; i++) audit.record(entry(i));
  assert.equal(count(), 1, 'a full batch is written on a later turn, not inside record()');
  await waitFor(() => count() === 1201, 3000);
  // The rows are visible once the writer thread commits; the gauge drops when its answer is
  // handled here, a moment later (CI read 1200 in between once).
  const gauge = () => metrics.registry.getSingleMetricAsString('audit_queue_length');
  await waitFor(async () => /audit_queue_length 0/.test(await gauge()), 3000).catch(() => undefined);
  assert.match(await gauge(), /audit_queue_length 0/);
  audit.stop();
  const r = verifyAuditChain(db);
  assert.deepEqual(r, { ok: true, rows: 1201 });
  // Durations are stored rounded so that the stored value is exactly what was hashed.
  assert.equal((db.prepare('SELECT duration_ms FROM audit_log WHERE id = 1').get() as { duration_ms: number }).duration_ms, 0.123);
  db.close();
});

test('retention deletes old rows and the chain still verifies from the pruned-through anchor', () => {
  const dir = tempDir();
  const db = openDatabase(dir);
  const day = 86_400_000;
  let now = Date.UTC(2026, 0, 31);
  const audit = new AuditLog({ db, log: createLogger({ level: 'silent' }), retentionDays: 7, now: () => now });
  for (let d = 20; d >= 0; d--) {
    audit.record({ ts: now - d * day, requestId: `day-${d}`, wallet: WALLET_A, nft: '1', method: 'GET', route: '/health', status: 200, ip: '127.0.0.1', durationMs: 1 });
  }
  audit.flush();
  assert.equal(audit.prune(), 13, 'rows older than 7 days');
  const remaining = db.prepare('SELECT * FROM audit_log ORDER BY id').all() as AuditRow[];
  assert.equal(remaining.length, 8);
  assert.equal(remaining[0]!.request_id, 'day-7');
  assert.deepEqual(verifyAuditChain(db), { ok: true, rows: 8 });
  // The chain continues after the prune...
  now += day;
  audit.record({ ts: now, requestId: 'after', wallet: undefined, nft: undefined, method: 'WS', route: '/ws', status: 101, ip: '127.0.0.1', durationMs: 2 });
  audit.flush();
  assert.deepEqual(verifyAuditChain(db), { ok: true, rows: 9 });
  // ...and deleting the first remaining row is still detected (it is not "just retention").
  db.prepare('DELETE FROM audit_log WHERE id = ?').run(remaining[0]!.id);
  const bad = verifyAuditChain(db);
  assert.equal(bad.ok, false);
  assert.equal(bad.firstBadId, remaining[1]!.id);
  audit.stop();
  db.close();
});

test('PANTHERS_AUDIT_RETENTION_DAYS reaches the server (rows older than it are pruned at start)', async () => {
  const dir = tempDir();
  const db = openDatabase(dir);
  const seed = new AuditLog({ db, log: createLogger({ level: 'silent' }) });
  seed.record({ ts: Date.now() - 40 * 86_400_000, requestId: 'ancient', wallet: undefined, nft: undefined, method: 'GET', route: '/health', status: 200, ip: '127.0.0.1', durationMs: 1 });
  seed.record({ ts: Date.now(), requestId: 'recent', wallet: undefined, nft: undefined, method: 'GET', route: '/health', status: 200, ip: '127.0.0.1', durationMs: 1 });
  seed.stop();
  db.close();
  const s = await startServer({ PANTHERS_AUDIT_RETENTION_DAYS: '30' }, {}, dir);
  try {
    // The prune is the writer thread's first op after start: ahead of any new row, not of the 200.
    const ids = () => (s.app.ctx.db.prepare('SELECT request_id FROM audit_log ORDER BY id').all() as { request_id: string }[]).map((r) => r.request_id);
    await waitFor(() => !ids().includes('ancient'), 3000);
    assert.deepEqual(ids(), ['recent']);
    assert.equal(verifyAuditChain(s.app.ctx.db).ok, true);
  } finally {
    await s.stop();
  }
});
