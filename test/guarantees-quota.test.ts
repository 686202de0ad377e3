import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from './helpers/server.js';
import { openDatabase } from '../src/db/database.js';
import { ChatQuota, nextUtcMidnight, utcDay } from '../src/guards/quota.js';
import { ApiError } from '../src/errors.js';

const NOON = Date.UTC(2026, 10, 25, 12, 0, 0);

async function quotaError(fn: () => unknown): Promise<ApiError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof ApiError);
    return e;
  }
  assert.fail('expected QUOTA_EXCEEDED');
}

test('under, at and past the daily budget, per NFT, against a real SQLite file', async () => {
  const db = openDatabase(tempDir());
  let now = NOON;
  const q = new ChatQuota(db, 1000, () => now);
  await q.check('7');
  await q.add('7', 600);
  await q.check('7'); // 600 < 1000
  await q.add('7', 399);
  await q.check('7'); // 999 < 1000
  await q.add('7', 1);
  const at = await quotaError(() => q.check('7')); // 1000: spent
  assert.equal(at.code, 'QUOTA_EXCEEDED');
  assert.equal(at.status, 429);
  assert.deepEqual(at.details, { limit: 1000, used: 1000, resets_at: '2026-11-26T00:00:00.000Z', retry_after: 12 * 3600 });
  await q.add('7', 250); // a turn that started under the budget is still counted
  assert.equal((await quotaError(() => q.check('7'))).details.used, 1250);
  // Another NFT has its own budget; the row is in the chat_usage table.
  await q.check('8');
  assert.deepEqual(db.prepare('SELECT nft_token_id, day, tokens FROM chat_usage ORDER BY nft_token_id').all(), [{ nft_token_id: '7', day: '2026-11-25', tokens: 1250 }]);
  // A new UTC day starts a new budget.
  now = Date.UTC(2026, 10, 26, 0, 0, 1);
  await q.check('7');
  assert.equal(await q.used('7'), 0);
  db.close();
});

test('usage survives a restart (a new ChatQuota on the same file)', async () => {
  const dir = tempDir();
  let db = openDatabase(dir);
  await new ChatQuota(db, 100, () => NOON).add('9', 100);
  db.close();
  db = openDatabase(dir);
  assert.equal((await quotaError(() => new ChatQuota(db, 100, () => NOON + 1000).check('9'))).details.used, 100);
  db.close();
});

test('off when the quota is 0: never refuses, but usage is still counted (GET /usage shows it)', async () => {
  const db = openDatabase(tempDir());
  const q = new ChatQuota(db, 0, () => NOON);
  assert.equal(q.enabled, false);
  await q.add('7', 1e9);
  await q.check('7');
  (await q.reserve('7', 1e9)).settle(5);
  assert.deepEqual(await q.usage('7'), {
    nft_token_id: '7', day: '2026-11-25', tokens_used: 1e9 + 5, tokens_reserved: 0, daily_quota: null, remaining: null, resets_at: '2026-11-26T00:00:00.000Z',
  });
  db.close();
});

test('reserve holds a turn\'s worst case: concurrent holds cannot overrun the budget; settle counts the real use once', async () => {
  const db = openDatabase(tempDir());
  const q = new ChatQuota(db, 1000, () => NOON);
  const a = await q.reserve('7', 400);
  const b = await q.reserve('7', 400);
  const refused = await quotaError(() => q.reserve('7', 400)); // 800 held + 400 > 1000
  assert.equal(refused.code, 'QUOTA_EXCEEDED');
  assert.equal(refused.details.reserved, 800);
  assert.equal(refused.details.requested, 400);
  assert.equal(refused.details.retry_after, 2, 'refused only by holds: retry soon');
  assert.equal((await q.usage('7')).remaining, 200);
  a.settle(100);
  a.settle(100); // once only
  assert.equal(await q.used('7'), 100);
  assert.equal(await q.reserved('7'), 400);
  b.settle(0); // released
  assert.equal(await q.reserved('7'), 0);
  (await q.reserve('7', 900)).settle(900);
  const spent = await quotaError(() => q.reserve('7', 1));
  assert.match(spent.message, /used up/);
  assert.equal(spent.details.retry_after, 12 * 3600);
  db.close();
});

test('UTC day and reset time helpers', async () => {
  assert.equal(utcDay(Date.UTC(2026, 0, 1, 23, 59, 59)), '2026-01-01');
  assert.equal(nextUtcMidnight(Date.UTC(2026, 11, 31, 5)).toISOString(), '2027-01-01T00:00:00.000Z');
});
