import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { spawnCli, tempDir, request, waitFor } from './helpers/server.js';
import { newEvmWallet } from './helpers/wallets.js';
import { deployLocalAt, openSseChat, signInProcess } from './helpers/streams.js';
import { openDatabase, DB_FILE } from '../src/db/database.js';
import { openSqliteStorage } from '../src/db/storage.js';
import { ChatQuota } from '../src/guards/quota.js';

const DAY = '2026-11-25';
const NOON = Date.UTC(2026, 10, 25, 12);

/** `ran` turns true when a setImmediate queued now runs: until then, one the store queues later (its group commit) has not run either. */
function immediateMark(): { ran: boolean } {
  const mark = { ran: false };
  setImmediate(() => (mark.ran = true));
  return mark;
}

function usageRows(dataDir: string): { nft_token_id: string; day: string; tokens: number }[] {
  const db = new Database(path.join(dataDir, DB_FILE), { readonly: true });
  try {
    return db.prepare('SELECT nft_token_id, day, tokens FROM chat_usage ORDER BY nft_token_id, day').all() as never;
  } finally {
    db.close();
  }
}

// SqliteQuotaStore writes settled usage by group commit: a pending map, written on setImmediate.
// Whatever is settled when the storage closes must be written by the close itself.
describe('usage settled while the server shuts down is on disk', () => {
  test('settles queued in the same turn of the event loop as storage.close are written by it', async () => {
    const dir = tempDir('panthers-quota-');
    const storage = openSqliteStorage(dir);
    const q = storage.quota;
    const holds = ['h1', 'h2', 'h3'];
    assert.equal((await q.reserve('7', DAY, 500, 10_000, holds[0]!, NOON, NOON + 60_000)).ok, true);
    assert.equal((await q.reserve('7', DAY, 500, 10_000, holds[1]!, NOON, NOON + 60_000)).ok, true);
    assert.equal((await q.reserve('8', DAY, 500, 10_000, holds[2]!, NOON, NOON + 60_000)).ok, true);

    const mark = immediateMark();
    // Not awaited: the group commit has not run when the storage closes.
    const written = [q.settle('7', holds[0]!, DAY, 120), q.settle('7', holds[1]!, DAY, 30.5), q.settle('8', holds[2]!, DAY, 45)];
    assert.equal(await q.used('7', DAY), 151, 'counted from memory before the commit');
    await storage.close();
    assert.equal(mark.ran, false, 'the storage closed before the group commit\'s setImmediate ran (else this test does not test close)');
    assert.equal(storage.db.open, false);
    await Promise.all(written); // resolved by close's flush, not rejected

    assert.deepEqual(usageRows(dir), [
      { nft_token_id: '7', day: DAY, tokens: 151 },
      { nft_token_id: '8', day: DAY, tokens: 45 },
    ]);
    const reopened = openSqliteStorage(dir);
    try {
      assert.equal(await reopened.quota.used('7', DAY), 151);
      assert.equal(await reopened.quota.used('8', DAY), 45);
      // The budget the next process enforces includes them.
      assert.deepEqual(await reopened.quota.reserve('7', DAY, 9850, 10_000, 'next', NOON, NOON + 60_000), { ok: false, used: 151, held: 0 });
    } finally {
      await reopened.close();
    }
  });

  test('a turn\'s reservation settled just before the app\'s connection closes (the storage does not own it)', async () => {
    const dir = tempDir('panthers-quota-');
    const db = openDatabase(dir);
    // As the app opens it: the storage on the app's connection, the app closes the connection.
    const storage = openSqliteStorage(dir, { db });
    const errors: unknown[] = [];
    const quota = new ChatQuota(storage.quota, 1000, () => NOON, undefined, (e) => errors.push(e));
    const hold = await quota.reserve('9', 400);
    assert.deepEqual({ ...(await quota.usage('9')), resets_at: undefined }, {
      nft_token_id: '9', day: DAY, tokens_used: 0, tokens_reserved: 400, daily_quota: 1000, remaining: 600, resets_at: undefined,
    });
    const mark = immediateMark();
    const written = hold.settle(222);
    await storage.close();
    assert.equal(db.open, true, 'the storage leaves the connection it was given open');
    db.close();
    assert.equal(mark.ran, false, 'closed before the group commit\'s setImmediate ran');
    await written;
    assert.deepEqual(errors, [], 'the write did not fail');

    const again = openDatabase(dir);
    try {
      const next = new ChatQuota(openSqliteStorage(dir, { db: again }).quota, 1000, () => NOON + 1000);
      const usage = await next.usage('9');
      assert.equal(usage.tokens_used, 222);
      assert.equal(usage.tokens_reserved, 0);
      assert.equal(usage.remaining, 778);
    } finally {
      again.close();
    }
  });

  // A turn is mid-stream when SIGTERM comes (1 s a token: deterministic). The shutdown aborts it,
  // the turn settles its partial usage and the process closes SQLite; the next process counts it.
  // Which of the two writes it (the group commit's setImmediate, or close()'s flush) cannot be
  // chosen from outside the process: the tests above pin the second.
  test('SIGTERM to a real server mid-turn: the turn\'s usage is counted after the restart', async () => {
    const dir = tempDir();
    const env = {
      PORT: '0', PANTHERS_DATA_DIR: dir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_SCRIPTED_DELAY_MS: '1000',
      PANTHERS_CHAT_DAILY_TOKEN_QUOTA: '100000', PANTHERS_SHUTDOWN_GRACE_MS: '5000',
    };
    const nft = '1450';
    let srv = await spawnCli(['serve'], env);
    let stopped = false;
    try {
      const token = await signInProcess(srv.url, dir, nft, newEvmWallet());
      await deployLocalAt(srv.url, token, nft);
      const sse = await openSseChat(srv.url, nft, token, { message: 'a slow answer that the shutdown cuts' });
      assert.equal(sse.status, 200);
      await waitFor(() => sse.events.filter((e) => e.done === false).length >= 2, 10_000);

      srv.child.kill('SIGTERM');
      assert.equal(await srv.exited, 0, srv.output().slice(-2000));
      stopped = true;
      await sse.ended;
      const last = sse.events.at(-1);
      assert.equal(last.done, true, JSON.stringify(sse.events.slice(-2)));
      assert.equal(last.incomplete, true);
      assert.equal(last.error.code, 'SERVICE_UNAVAILABLE');
      assert.ok(last.tokens_used > 0);
      assert.doesNotMatch(srv.output(), /counting a turn failed|database closed/);

      // On disk once the process is gone: the cut turn's prompt and partial reply.
      const rows = usageRows(dir);
      assert.deepEqual(rows.map((r) => [r.nft_token_id, r.tokens]), [[nft, last.tokens_used]]);

      srv = await spawnCli(['serve'], env);
      stopped = false;
      await waitFor(async () => (await request(srv.url, 'GET', `/v1/agents/${nft}/info`)).status === 200);
      const usage = await request(srv.url, 'GET', `/v1/agents/${nft}/usage`, { token });
      assert.equal(usage.status, 200, usage.text);
      assert.equal(usage.body.day, rows[0]!.day);
      assert.equal(usage.body.tokens_used, last.tokens_used);
      assert.equal(usage.body.tokens_reserved, 0);
      assert.equal(usage.body.remaining, 100000 - last.tokens_used);
    } finally {
      if (!stopped) {
        srv.child.kill('SIGTERM');
        await srv.exited;
      }
    }
  });
});
