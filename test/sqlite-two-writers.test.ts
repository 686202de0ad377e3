import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { createRequire } from 'node:module';
import { migrate, openDatabase } from '../src/db/database.js';
import { SqliteIdempotencyStore } from '../src/guards/idempotency-store.sqlite.js';
import { SqliteTransferStore } from '../src/auth/transfer-store.sqlite.js';
import { tempDir } from './helpers/server.js';

/**
 * The audit log's writer thread is a second writer on the server's SQLite file. A transaction on
 * the main thread that reads before it writes, opened DEFERRED, fails at its first write with
 * SQLITE_BUSY_SNAPSHOT (no busy wait) whenever that thread committed in between: a chat request
 * with an Idempotency-Key answered 500 in the soak. Every main-thread write transaction is
 * IMMEDIATE, so it waits for the lock like a single statement does.
 */
test('main-thread transactions that read first wait for a second writer on the same file instead of failing', async () => {
  const dir = tempDir();
  const db = openDatabase(dir);
  migrate(db);
  const file = path.join(dir, 'panthers.db');
  // A writer thread committing small transactions back to back, as the audit writer does under load.
  const writer = new Worker(
    `const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))});
     const { parentPort, workerData } = require('node:worker_threads');
     const db = new Database(workerData, { timeout: 5000 });
     db.exec('CREATE TABLE IF NOT EXISTS other_writer (id INTEGER PRIMARY KEY, at INTEGER)');
     const ins = db.prepare('INSERT INTO other_writer (at) VALUES (?)');
     const tx = db.transaction((n) => { for (let i = 0; i < n; i++) ins.run(Date.now()); }).immediate;
     let stop = false, commits = 0;
     parentPort.on('message', () => { stop = true; });
     const loop = () => { if (stop) { parentPort.postMessage(commits); db.close(); return; } tx(5); commits++; setImmediate(loop); };
     parentPort.postMessage('ready'); loop();`,
    { eval: true, workerData: file },
  );
  const commits = new Promise<number>((resolve) => writer.on('message', (m) => { if (typeof m === 'number') resolve(m); }));
  await new Promise((r) => writer.once('message', r));
  const idem = new SqliteIdempotencyStore(db);
  const transfers = new SqliteTransferStore(db);
  const errors: string[] = [];
  const until = performance.now() + 1500;
  let n = 0;
  while (performance.now() < until) {
    try {
      // Reads the key, then inserts: the read-then-write shape.
      await idem.claim('0xabc', 'chat', `key-${n}`, 'fp', 'boot', Date.now(), Date.now() + 60_000);
      await transfers.wipeConversations('7000', '0xabc');
    } catch (e) {
      errors.push((e as { code?: string }).code ?? String(e));
    }
    n++;
    if (n % 20 === 0) await new Promise((r) => setImmediate(r));
  }
  writer.postMessage('stop');
  const theirs = await commits;
  await writer.terminate();
  db.close();
  assert.ok(theirs > 50 && n > 100, `both wrote: ${theirs} commits there, ${n} claims here`);
  assert.deepEqual([...new Set(errors)], [], `${errors.length} of ${n} main-thread transactions failed`);
});
