import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/db/database.js';
import { ConversationsRepo } from '../../src/agents/conversations-repo.js';

/**
 * The project's chat write path alone, in its own (pinned) process: `writers` conversations each
 * loop a turn's writes as AgentActor makes them (the user's message committed, then the reply
 * committed) through ConversationsRepo.appendCommitted, each write awaited before the next as a
 * turn awaits it. Prints {"rows_per_s": N} after BENCH_SECONDS. Set against sqlite-raw's
 * single-row commits: what the write path costs without the streaming around it.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 1);
const writers = Number(process.env.BENCH_WRITERS ?? 200);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panthers-write-path-'));
const db = openDatabase(dir);
const repo = new ConversationsRepo(db);
const reply = 'the agent considers your question carefully and answers with a short deterministic reply';
const now = Date.now();
let rows = 0;
const t0 = performance.now();
const until = t0 + seconds * 1000;
async function writer(i: number): Promise<void> {
  const id = `c-bench-${i}`;
  repo.create({ id, nft_token_id: '1', wallet: '0xbench', created_at: now, updated_at: now });
  while (performance.now() < until) {
    await repo.appendCommitted(id, 'user', 'hello there, agent', 5, false, Date.now());
    await repo.appendCommitted(id, 'assistant', reply, 20, false, Date.now());
    rows += 2;
  }
}
await Promise.all(Array.from({ length: writers }, (_, i) => writer(i)));
const rate = rows / ((performance.now() - t0) / 1000);
repo.flush();
db.close();
fs.rmSync(dir, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ rows_per_s: rate }) + '\n');
