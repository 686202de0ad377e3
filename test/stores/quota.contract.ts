import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreEngine } from '../helpers/state-engines.js';
import type { QuotaStore } from '../../src/guards/quota-store.js';
import { ChatQuota } from '../../src/guards/quota.js';
import { ApiError } from '../../src/errors.js';

const DAY = '2026-11-25';
const NOON = Date.UTC(2026, 10, 25, 12);
let n = 0;
const id = () => `hold-${++n}`;

/** QuotaStore: reserve decides against usage and every hold at once; settle releases and counts. */
export function quotaContract(open: () => Promise<StoreEngine>): void {
  let engine: StoreEngine;
  let a: QuotaStore;
  let b: QuotaStore;
  before(async () => {
    engine = await open();
    a = engine.node().quota;
    b = engine.node().quota;
  });
  after(() => engine.close());

  test('reserve under the limit, refused past it, settle counts once and releases', async () => {
    const h1 = id();
    assert.deepEqual(await a.reserve('7', DAY, 400, 1000, h1, NOON, NOON + 60_000), { ok: true, used: 0, held: 0 });
    const h2 = id();
    assert.deepEqual(await a.reserve('7', DAY, 400, 1000, h2, NOON, NOON + 60_000), { ok: true, used: 0, held: 400 });
    assert.deepEqual(await a.reserve('7', DAY, 400, 1000, id(), NOON, NOON + 60_000), { ok: false, used: 0, held: 800 });
    assert.equal(await a.held('7', NOON), 800);
    await a.settle('7', h1, DAY, 100);
    assert.equal(await a.used('7', DAY), 100);
    assert.equal(await a.held('7', NOON), 400);
    await a.settle('7', h2, DAY, 0);
    assert.equal(await a.held('7', NOON), 0);
    assert.equal(await b.used('7', DAY), 100, 'usage is in the shared table');
    assert.equal(await a.used('8', DAY), 0, 'another NFT');
    await a.settle('7', '', '2026-11-01', 5);
    await a.prune('2026-11-18');
    assert.equal(await a.used('7', '2026-11-01'), 0, 'old days pruned');
    assert.equal(await a.used('7', DAY), 100);
  });

  test('settles made together are each counted once; SQLite counts them before its group commit', async () => {
    const holds = [id(), id(), id()];
    for (const h of holds) assert.equal((await a.reserve('9', DAY, 10, 1000, h, NOON, NOON + 60_000)).ok, true);
    const written = holds.map((h) => a.settle('9', h, DAY, 7));
    if (engine.kind === 'sqlite') {
      // Not committed yet (one transaction at the next turn of the loop), already counted.
      assert.equal(await a.used('9', DAY), 21);
      assert.deepEqual(await a.reserve('9', DAY, 980, 1000, id(), NOON, NOON + 60_000), { ok: false, used: 21, held: 0 });
    }
    await Promise.all(written);
    assert.equal(await a.used('9', DAY), 21);
    assert.equal(await b.used('9', DAY), 21, 'committed once the settles resolve');
    assert.equal(await a.held('9', NOON), 0);
  });

  test('reserves racing (from two connections where the store is shared) never pass the limit', async () => {
    const nodes = engine.shared ? [a, b] : [a];
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => nodes[i % nodes.length]!.reserve('race', DAY, 100, 1000, id(), NOON, NOON + 60_000)));
    assert.equal(results.filter((r) => r.ok).length, 10, 'exactly the 10 holds of 100 that fit in 1000');
    assert.equal(await a.held('race', NOON), 1000);
  });

  test('a hold of a node that died expires with its deadline (shared stores)', async (t) => {
    if (!engine.shared) return t.skip('one process: holds live and die with it');
    assert.equal((await a.reserve('dead', DAY, 900, 1000, id(), NOON, NOON + 1000)).ok, true);
    assert.equal((await b.reserve('dead', DAY, 900, 1000, id(), NOON + 500, NOON + 60_000)).ok, false);
    assert.equal((await b.reserve('dead', DAY, 900, 1000, id(), NOON + 2000, NOON + 60_000)).ok, true, 'after the dead hold expired');
  });

  test('ChatQuota on two nodes: the budget holds across them', async () => {
    const nodes = engine.shared ? [a, b] : [a];
    const quotas = nodes.map((s) => new ChatQuota(s, 500, () => NOON));
    const tries = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => quotas[i % quotas.length]!.reserve('cq', 100)));
    assert.equal(tries.filter((t) => t.status === 'fulfilled').length, 5);
    const refused = tries.find((t) => t.status === 'rejected') as PromiseRejectedResult;
    assert.ok(refused.reason instanceof ApiError && refused.reason.code === 'QUOTA_EXCEEDED');
    const usage = await quotas[0]!.usage('cq');
    assert.equal(usage.tokens_reserved, 500);
    assert.equal(usage.remaining, 0);
  });
}
