import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreEngine } from '../helpers/state-engines.js';
import type { ChallengeStore } from '../../src/auth/challenge-store.js';

const row = (nonce: string, expires_at = 2_000_000) => ({ nonce, wallet: '0xabc', nft_token_id: '7', message: `msg ${nonce}`, created_at: 1_000_000, expires_at });

/** ChallengeStore: a nonce is burned once, by exactly one of any number of racing attempts on any number of nodes. */
export function challengeContract(open: () => Promise<StoreEngine>): void {
  let engine: StoreEngine;
  let a: ChallengeStore;
  let b: ChallengeStore;
  before(async () => {
    engine = await open();
    a = engine.node().challenges;
    b = engine.node().challenges;
  });
  after(() => engine.close());

  test('insert, burn once, unknown nonces, prune of expired ones', async () => {
    await a.insert(row('n1'));
    const got = await a.burn('n1', 1_500_000);
    assert.deepEqual(got, { ...row('n1'), used_at: 1_500_000 });
    assert.equal(await a.burn('n1', 1_500_001), undefined, 'already used');
    assert.equal(await b.burn('n1', 1_500_002), undefined, 'already used, seen from another node');
    assert.equal(await a.burn('never', 1), undefined);
    await a.insert(row('old', 1_000));
    await a.insert(row('live', 9_000_000));
    await a.prune(5_000);
    assert.equal(await a.burn('old', 6_000), undefined, 'pruned');
    assert.ok(await b.burn('live', 6_000), 'a live one survives a prune');
  });

  test('two nodes racing to burn one nonce: exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const nonce = `race-${round}`;
      await a.insert(row(nonce));
      const attempts = Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).burn(nonce, 1_500_000 + i));
      const won = (await Promise.all(attempts)).filter(Boolean);
      assert.equal(won.length, 1, `round ${round}: one burn wins`);
    }
  });
}
