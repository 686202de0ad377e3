import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { openDatabase } from '../src/db/database.js';
import { openPg } from '../src/db/pg.js';
import { AuditLog } from '../src/guards/audit-log.js';
import { SqliteAuditStore } from '../src/guards/audit-store.sqlite.js';
import { PgAuditStore } from '../src/guards/audit-store.pg.js';
import type { AuditEntry } from '../src/server/http-server.js';
import { createLogger } from '../src/logger.js';
import { startPostgres } from '../test/helpers/engines.js';

/**
 * The audit log's own costs (issue 15a), in one process, bounded in time:
 *  - main thread: CPU per request of record() + the hand-over to the writer thread (this
 *    thread's utime+stime from /proc/self/task/<pid>/stat, so the writer's work is left out);
 *  - writer: CPU per row of hashing + committing a 500-row batch to SQLite (SqliteAuditStore,
 *    the code the thread runs, timed here on one thread);
 *  - PostgreSQL: rows/s appended to ONE chain by 1 and by 3 writers (a connection each, each
 *    batch a transaction that locks the head FOR UPDATE), against PANTHERS_DATABASE_URL or a
 *    PostgreSQL 15 started in a temp dir.
 * Usage: node dist/bench/audit.js [--seconds=3] [--batch=500] [--before=DIST (an older build's audit log, same run)]
 */
const arg = (name: string, dflt: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
};
const SECONDS = arg('seconds', 3);
const BATCH = arg('batch', 500);
const quiet = createLogger({ level: 'silent' });
const TICK_US = 1e6 / 100; // USER_HZ on Linux

/** CPU microseconds of this process's main thread so far. */
function mainThreadCpuUs(): number {
  const f = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}
const processCpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const entry = (i: number): AuditEntry => ({
  ts: Date.now(), requestId: `b3c0f8e4-1d2a-4c4e-9d8a-${String(i).padStart(12, '0')}`, wallet: '0x' + 'ab'.repeat(20), nft: '4242',
  method: 'GET', route: '/v1/deployments/:nft_token_id', status: 200, ip: '127.0.0.1', durationMs: 0.123,
});

type AuditLogLike = { start(): void; stop(): void; record(e: AuditEntry): void };
type AuditLogCtor = new (o: { db: ReturnType<typeof openDatabase>; log: typeof quiet; batchSize: number }) => AuditLogLike;

/**
 * Main-thread CPU of a loop of turns, 200 requests a turn every 5 ms (40k requests/s at most,
 * about what one core serves on http_auth_get: a writer that keeps up), `record` per request.
 */
async function mainThreadLoop(label: string, Ctor: AuditLogCtor | undefined): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panthers-bench-audit-'));
  const db = openDatabase(dir);
  const log = Ctor ? new Ctor({ db, log: quiet, batchSize: BATCH }) : undefined;
  log?.start();
  const entries = Array.from({ length: 1000 }, (_, i) => entry(i));
  let n = 0;
  const m0 = mainThreadCpuUs();
  const p0 = processCpuUs();
  const until = Date.now() + SECONDS * 1000;
  while (Date.now() < until) {
    if (log) for (let i = 0; i < 200; i++) log.record(entries[n++ % 1000]!);
    else for (let i = 0; i < 200; i++) n += entries[n % 1000] ? 1 : 0;
    await new Promise((r) => setTimeout(r, 5));
  }
  const mainUs = mainThreadCpuUs() - m0;
  log?.stop();
  const procUs = processCpuUs() - p0;
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const perReq = mainUs / n;
  if (label) console.log(`${label}: ${n} requests, main thread ${perReq.toFixed(3)} us CPU/request (loop turns included), whole process ${(procUs / n).toFixed(2)} us/request`);
  return perReq;
}

async function mainThread(): Promise<void> {
  const base = await mainThreadLoop('', undefined);
  console.log(`loop alone (the same turns, no audit): ${base.toFixed(3)} us/request-slot; subtract it from the figures below`);
  const before = process.argv.find((x) => x.startsWith('--before='))?.slice(9);
  if (before) {
    const mod = (await import(path.resolve(before, 'src/guards/audit-log.js'))) as { AuditLog: AuditLogCtor };
    const b = await mainThreadLoop(`before (${before}: hash + insert on the main thread)`, mod.AuditLog);
    console.log(`  -> audit on the main thread: ${(b - base).toFixed(3)} us CPU/request`);
  }
  const a = await mainThreadLoop('after (writer thread)', AuditLog as unknown as AuditLogCtor);
  console.log(`  -> audit on the main thread: ${(a - base).toFixed(3)} us CPU/request`);
}

function flat(from: number, n: number): unknown[] {
  const out: unknown[] = [];
  for (let i = from; i < from + n; i++) {
    const e = entry(i);
    out.push(e.ts, e.requestId, e.wallet, e.nft, e.method, e.route, e.status, e.ip, e.durationMs, null, null);
  }
  return out;
}

function writer(): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panthers-bench-audit-'));
  const db = openDatabase(dir);
  const store = new SqliteAuditStore(db);
  const batches = Array.from({ length: 20 }, (_, i) => flat(i * BATCH, BATCH));
  let rows = 0;
  const c0 = processCpuUs();
  const until = Date.now() + SECONDS * 1000;
  for (let i = 0; Date.now() < until; i++) rows += store.appendSync(batches[i % 20]!, 0).appended;
  const us = processCpuUs() - c0;
  console.log(`writer (SQLite, batches of ${BATCH}): ${rows} rows, ${(us / rows).toFixed(2)} us CPU/row (hash + insert + commit)`);
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

async function pgChain(url: string, writers: number): Promise<void> {
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  const name = `bench_audit_${process.pid}_${writers}`;
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name}`);
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const dbUrl = url.replace(/\/[^/]*$/, `/${name}`);
  const sqls = Array.from({ length: writers }, () => openPg(dbUrl, { max: 1 }));
  const stores = sqls.map((s) => new PgAuditStore(s));
  await stores[0]!.ensureSchema();
  const batches = Array.from({ length: 10 }, (_, i) => flat(i * BATCH, BATCH));
  let rows = 0;
  const t0 = Date.now();
  const until = t0 + SECONDS * 1000;
  await Promise.all(stores.map(async (s, w) => {
    for (let i = w; Date.now() < until; i++) rows += (await s.append(batches[i % 10]!, 0)).appended;
  }));
  const secs = (Date.now() - t0) / 1000;
  const ok = await stores[0]!.verify();
  console.log(`postgres, ${writers} writer(s), batches of ${BATCH}: ${Math.round(rows / secs)} rows/s into one chain (verify: ${ok.ok ? `ok, ${ok.rows} rows` : ok.reason})`);
  for (const s of sqls) await s.end({ timeout: 1 });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name}`);
  await admin.end();
}

async function main(): Promise<void> {
  await mainThread();
  writer();
  let url = process.env.PANTHERS_DATABASE_URL;
  const pg = url ? undefined : await startPostgres();
  url ??= pg!.url;
  try {
    await pgChain(url, 1);
    await pgChain(url, 3);
  } finally {
    pg?.stop();
  }
}

await main();
