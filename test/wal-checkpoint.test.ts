import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DB_FILE, openDatabase } from '../src/db/database.js';
import { AuditLog } from '../src/guards/audit-log.js';
import { CHECKPOINT_INTERVAL_MS } from '../src/guards/audit-worker.js';
import { createLogger } from '../src/logger.js';
import { tempDir } from './helpers/server.js';

// Issue 15: the server's connection no longer checkpoints the WAL inside its commits (a stall of
// tens of ms on the event loop); the audit writer thread does, on its own connection.
test('while the audit writer runs, it checkpoints the WAL; the server connection does not', async () => {
  const dir = tempDir('panthers-wal-');
  const db = openDatabase(dir);
  const audit = new AuditLog({ db, log: createLogger({ level: 'silent' }) });
  assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 1000);
  audit.start();
  assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0);

  // About 2,000 pages written through the server's connection, in many commits.
  db.exec('CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB)');
  const insert = db.prepare('INSERT INTO filler (body) VALUES (?)');
  const file = path.join(dir, DB_FILE);
  const before = fs.statSync(file).size;
  for (let c = 0; c < 200; c++) db.transaction(() => { for (let i = 0; i < 10; i++) insert.run(Buffer.alloc(3000, c)); })();
  // Nothing is copied into the database file by those commits themselves...
  assert.equal(fs.statSync(file).size, before);
  // ...the writer thread does it within its interval (the file grows while a checkpoint copies).
  const copied = () => fs.statSync(file).size > before + 1000 * 4096;
  const until = Date.now() + CHECKPOINT_INTERVAL_MS * 10;
  while (!copied() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.ok(copied(), `the database file grew from ${before} to ${fs.statSync(file).size} bytes`);
  assert.equal((db.prepare('SELECT count(*) AS n FROM filler').get() as { n: number }).n, 2000);

  audit.stop();
  // Without the thread, SQLite's own checkpoints again.
  assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 1000);
  db.close();
});
