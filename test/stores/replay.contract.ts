import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreEngine } from '../helpers/state-engines.js';
import type { ReplayStore } from '../../src/guards/replay-store.js';

/** ReplayStore: a signature is accepted once, by exactly one node when two see it at once. */
export function replayContract(open: () => Promise<StoreEngine>): void {
  let engine: StoreEngine;
  let a: ReplayStore;
  let b: ReplayStore;
  before(async () => {
    engine = await open();
    a = engine.node().replay;
    b = engine.node().replay;
  });
  after(() => engine.close());

  test('first sight, replay, sweep of expired entries, count', async () => {
    assert.equal(await a.remember('s1', 100), true);
    assert.equal(await a.remember('s1', 100), false);
    assert.equal(await b.remember('s1', 100), false, 'a replay on another node');
    assert.equal(await b.remember('s2', 500), true);
    assert.equal(await a.count(), 2);
    assert.equal(await a.sweep(200), 1, 's1 expired at 100');
    assert.equal(await b.count(), 1);
    assert.equal(await a.remember('s1', 600), true, 'once out of the window it is the timestamp check that refuses it');
  });

  test('the same signed request seen by two nodes at once: exactly one accepted', async () => {
    for (let round = 0; round < 10; round++) {
      const sig = `race-${round}`.padEnd(64, '0');
      const results = await Promise.all([a.remember(sig, 1e9), b.remember(sig, 1e9), a.remember(sig, 1e9), b.remember(sig, 1e9)]);
      assert.equal(results.filter(Boolean).length, 1, `round ${round}`);
    }
  });
}
