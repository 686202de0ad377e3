import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/db/database.js';

/**
 * The floor under every chat write path: better-sqlite3 on the project's schema and pragmas
 * (WAL, synchronous NORMAL), one INSERT INTO messages per commit, nothing else. Prints
 * {"rows_per_s": N} after BENCH_SECONDS.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 1);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panthers-sqlite-raw-'));
const db = openDatabase(dir);
const insert = db.prepare('INSERT INTO messages (conversation_id, role, content, tokens, incomplete, created_at) VALUES (?, ?, ?, ?, ?, ?)');
const reply = 'the agent considers your question carefully and answers with a short deterministic reply';
let rows = 0;
const t0 = performance.now();
const until = t0 + seconds * 1000;
while (performance.now() < until) {
  for (let i = 0; i < 100; i++) insert.run('c-bench', rows % 2 ? 'assistant' : 'user', reply, 20, 0, Date.now()), rows++;
}
const rate = rows / ((performance.now() - t0) / 1000);
db.close();
fs.rmSync(dir, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ rows_per_s: rate }) + '\n');
