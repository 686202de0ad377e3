import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../src/db/database.js';
import { ConversationsRepo, BURST_FIRST_ROWS, BURST_MAX_ROWS } from '../src/agents/conversations-repo.js';

/** The group commit under a burst (issue 15): the first rows commit at once, the rest still group. */
function temp() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conv-burst-'));
  const db = openDatabase(dir);
  return { db, repo: new ConversationsRepo(db), close: () => { db.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

test('1,000 rows queued in one tick: the first commit carries BURST_FIRST_ROWS and resolves before the tick ends; batches double up to BURST_MAX_ROWS; every row lands', async () => {
  const { db, repo, close } = temp();
  try {
    let commits = 0;
    const sizes: number[] = [];
    const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM messages');
    const committedAt: number[] = [];
    let immediateRan = false;
    setImmediate(() => { immediateRan = true; });
    const all: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) {
      repo.create({ id: `c${i}`, nft_token_id: 'n', wallet: 'w', created_at: 1, updated_at: 1 });
      // Each "turn" queues its rows synchronously, then yields (as the agent actor does between turns).
      all.push(repo.appendCommitted(`c${i}`, 'user', `m${i}`, 1, false, 2).then(() => { committedAt[i] = immediateRan ? 1 : 0; }));
      const before = count.get()!.n;
      await Promise.resolve();
      await Promise.resolve();
      const after = count.get()!.n;
      if (after !== before) { commits++; sizes.push(after - before); }
    }
    await Promise.all(all);
    assert.equal(count.get()!.n, 1000);
    assert.equal(sizes[0], BURST_FIRST_ROWS);
    assert.equal(sizes[1], BURST_FIRST_ROWS * 2);
    assert.ok(sizes.every((s) => s <= BURST_MAX_ROWS), `batches ${sizes.join(',')}`);
    assert.equal(committedAt[0], 0, 'the first row committed (and its caller went on) within the burst tick');
    assert.ok(commits < 20, `a burst is still a few commits, got ${commits}`);
  } finally {
    close();
  }
});

test('a full batch never splits the rows one caller queued together (prelude and message land in one commit)', async () => {
  const { db, repo, close } = temp();
  try {
    const writes: Promise<void>[] = [];
    // One caller queues more rows than a first batch holds, synchronously.
    for (let i = 0; i < BURST_FIRST_ROWS * 3; i++) writes.push(repo.appendCommitted('c', 'user', `p${i}`, 1, false, 1));
    repo.create({ id: 'c', nft_token_id: 'n', wallet: 'w', created_at: 1, updated_at: 1 });
    await Promise.resolve();
    const n = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM messages').get()!.n;
    assert.ok(n === 0 || n === BURST_FIRST_ROWS * 3, `all or nothing, got ${n}`);
    await Promise.all(writes);
    assert.equal(repo.page('c', 100, 0).total, BURST_FIRST_ROWS * 3);
  } finally {
    close();
  }
});

test('a few rows in a tick still go in one commit at the end of the tick', async () => {
  const { db, repo, close } = temp();
  try {
    repo.create({ id: 'c', nft_token_id: 'n', wallet: 'w', created_at: 1, updated_at: 1 });
    const w = [repo.appendCommitted('c', 'user', 'a', 1, false, 1), repo.appendCommitted('c', 'assistant', 'b', 1, false, 2)];
    await Promise.resolve();
    assert.equal(db.prepare<[], { n: number }>('SELECT count(*) AS n FROM messages').get()!.n, 0);
    await Promise.all(w);
    assert.equal(repo.page('c', 10, 0).total, 2);
    assert.equal(repo.get('c')!.updated_at, 2);
  } finally {
    close();
  }
});
