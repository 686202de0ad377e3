import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreEngine } from '../helpers/state-engines.js';
import type { IdempotencyKeyStore } from '../../src/guards/idempotency-store.js';
import { IdempotencyStore } from '../../src/guards/idempotency.js';

/** IdempotencyKeyStore: a key is taken by one request at a time, remembered until it expires. */
export function idempotencyContract(open: () => Promise<StoreEngine>): void {
  let engine: StoreEngine;
  let a: IdempotencyKeyStore;
  let b: IdempotencyKeyStore;
  before(async () => {
    engine = await open();
    a = engine.node().idempotency;
    b = engine.node().idempotency;
  });
  after(() => engine.close());

  test('claim, pending, complete, replay; release lets a retry run; an expired key is taken afresh', async () => {
    assert.equal(await a.claim('w', 'POST /x', 'k1', 'fp', 'boot-a', 1000, 5000), undefined);
    const pending = await b.claim('w', 'POST /x', 'k1', 'fp', 'boot-b', 1001, 5001);
    assert.equal(pending?.state, 'pending');
    assert.equal(pending?.boot, 'boot-a');
    assert.equal(pending?.created_at, 1000);
    await a.setRef('w', 'POST /x', 'k1', 'conv-1');
    await a.complete('w', 'POST /x', 'k1', 201, '{"ok":true}', null);
    const done = await b.claim('w', 'POST /x', 'k1', 'fp', 'boot-b', 1002, 5002);
    assert.deepEqual({ state: done?.state, status: done?.status, response: done?.response, ref: done?.ref }, { state: 'done', status: 201, response: '{"ok":true}', ref: 'conv-1' });
    await b.release('w', 'POST /x', 'k1');
    assert.equal((await a.claim('w', 'POST /x', 'k1', 'fp', 'boot-a', 1003, 5003))?.state, 'done', 'release leaves a done key alone');
    // Scopes and wallets are separate.
    assert.equal(await a.claim('w2', 'POST /x', 'k1', 'fp', 'boot-a', 1000, 5000), undefined);
    assert.equal(await a.claim('w', 'POST /y', 'k1', 'fp', 'boot-a', 1000, 5000), undefined);
    await a.release('w', 'POST /y', 'k1');
    assert.equal(await b.claim('w', 'POST /y', 'k1', 'fp2', 'boot-b', 1004, 5004), undefined, 'released: a retry runs as a first attempt');
    // Expired: taken afresh with the new fingerprint.
    assert.equal(await b.claim('w', 'POST /x', 'k1', 'other', 'boot-b', 6000, 9000), undefined);
    assert.equal((await a.claim('w', 'POST /x', 'k1', 'other', 'boot-a', 6001, 9001))?.fingerprint, 'other');
    await a.purge(9500);
    assert.equal(await a.claim('w', 'POST /x', 'k1', 'x', 'boot-a', 9501, 12000), undefined, 'purged');
  });

  test('two nodes claiming one key at once: exactly one runs the request', async () => {
    for (let round = 0; round < 5; round++) {
      const key = `race-${round}`;
      const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).claim('w', 'POST /z', key, 'fp', `boot-${i % 2}`, 1000, 1e9)));
      assert.equal(claims.filter((c) => c === undefined).length, 1, `round ${round}`);
    }
  });

  test('IdempotencyStore across nodes: a pending key of a live node is in progress, an old one interrupted', async () => {
    let now = 10_000;
    const shared = engine.shared ? 60_000 : 0;
    const nodeA = new IdempotencyStore(a, () => now, 86_400_000, shared);
    const nodeB = new IdempotencyStore(b, () => now, 86_400_000, shared);
    assert.deepEqual(await nodeA.begin('0xW', 'POST /chat 7', 'key', 'fp'), { kind: 'new' });
    assert.equal((await nodeA.begin('0xw', 'POST /chat 7', 'key', 'fp')).kind, 'in_progress', 'the same process: in progress');
    const other = await nodeB.begin('0xw', 'POST /chat 7', 'key', 'fp');
    assert.equal(other.kind, engine.shared ? 'in_progress' : 'interrupted', 'another live node: in progress; one process: a restart cut it');
    now += 120_000;
    assert.equal((await nodeB.begin('0xw', 'POST /chat 7', 'key', 'fp')).kind, 'interrupted');
    await assert.rejects(nodeB.begin('0xw', 'POST /chat 7', 'key', 'different'), /different request/);
    await nodeA.complete('0xw', 'POST /chat 7', 'key', 200, '{"a":1}');
    assert.deepEqual(await nodeB.begin('0xw', 'POST /chat 7', 'key', 'fp'), { kind: 'replay', status: 200, body: '{"a":1}', ref: null });
  });
}
