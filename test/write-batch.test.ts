import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../src/db/database.js';
import { WriteBatch } from '../src/db/write-batch.js';
import { ConversationsRepo } from '../src/agents/conversations-repo.js';
import { SqliteQuotaStore } from '../src/guards/quota-store.sqlite.js';

const DAY = '2026-12-03';

/** A real SQLite file whose transactions are counted (wrapped before any store makes its own). */
function counted(): { db: Db; commits: () => number; close: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'write-batch-'));
  const db = openDatabase(dir);
  let n = 0;
  const tx = db.transaction.bind(db);
  (db as { transaction: unknown }).transaction = (fn: (...a: unknown[]) => unknown) => {
    const t = tx(fn);
    const count = (f: (...a: unknown[]) => unknown) => (...a: unknown[]) => (n++, f(...a));
    return Object.assign(count(t), { immediate: count(t.immediate), deferred: count(t.deferred), exclusive: count(t.exclusive) });
  };
  return { db, commits: () => n, close: () => { db.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

const usage = (db: Db, nft: string) => (db.prepare('SELECT tokens FROM chat_usage WHERE nft_token_id = ? AND day = ?').pluck().get(nft, DAY) as number | undefined) ?? 0;

test('a turn\'s rows and its usage, queued in one tick by two stores on one connection, land in one COMMIT', async () => {
  const { db, commits, close } = counted();
  try {
    const repo = new ConversationsRepo(db);
    const quota = new SqliteQuotaStore(db);
    await quota.reserve('7', DAY, 100, 1000, 'h1');
    const before = commits();
    repo.create({ id: 'c1', nft_token_id: '7', wallet: '0xabc', created_at: 1, updated_at: 1 });
    await Promise.all([
      repo.appendCommitted('c1', 'user', 'hi', 1, false, 1),
      repo.appendCommitted('c1', 'assistant', 'hello', 2, false, 2),
      quota.settle('7', 'h1', DAY, 42),
    ]);
    assert.equal(commits() - before, 1);
    assert.equal(db.prepare('SELECT count(*) FROM messages WHERE conversation_id = ?').pluck().get('c1'), 2);
    assert.equal(usage(db, '7'), 42);
  } finally {
    close();
  }
});

test('a batch that fails rejects every store\'s callers; the usage is not dropped but goes with the next batch', async () => {
  const { db, close } = counted();
  try {
    const repo = new ConversationsRepo(db);
    const quota = new SqliteQuotaStore(db);
    // Another store on the connection whose rows fail (as a full disk would fail them).
    const failing = { writeBatch() { throw new Error('SQLITE_FULL: database or disk is full'); }, batchDone() {} };
    repo.create({ id: 'c2', nft_token_id: '8', wallet: '0xabc', created_at: 1, updated_at: 1 });
    const reply = repo.appendCommitted('c2', 'assistant', 'lost', 1, false, 1);
    const settled = quota.settle('8', 'none', DAY, 30);
    WriteBatch.of(db).add(failing);
    await assert.rejects(reply, /SQLITE_FULL/);
    await assert.rejects(settled, /SQLITE_FULL/);
    // Rolled back: nothing of the batch is on disk, but the spent tokens still count.
    assert.equal(db.prepare('SELECT count(*) FROM messages').pluck().get(), 0);
    assert.equal(usage(db, '8'), 0);
    assert.equal(await quota.used('8', DAY), 30);
    // The next batch (any store's) writes the carried usage once, with the new.
    await quota.settle('8', 'none', DAY, 5);
    assert.equal(usage(db, '8'), 35);
    assert.equal(await quota.used('8', DAY), 35);
  } finally {
    close();
  }
});
