import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreEngine } from '../helpers/state-engines.js';
import type { SessionStore } from '../../src/auth/session-store.js';
import { hashRefreshToken, nextRefreshToken } from '../../src/auth/sessions.js';
import { sessionActorKind, type SessionGrant, type SessionMsg } from '../../actors/session-actor.js';
import type { Behaviour } from '../../actors/registry.js';
import { ApiError } from '../../src/errors.js';

let seq = 0;
const sid = () => `s-${process.pid}-${++seq}`;
const open = (id: string, hash: string, nft = '7') => ({ id, wallet: '0xabc', nft_token_id: nft, refresh_hash: hash, created_at: 1000, expires_at: 10_000_000 });

/**
 * SessionStore: conditional rotation (only from the current hash, never on a revoked session),
 * revoke once; and the SessionActor on two nodes at once gives the single-node answers.
 */
export function sessionContract(openEngine: () => Promise<StoreEngine>): void {
  let engine: StoreEngine;
  let a: SessionStore;
  let b: SessionStore;
  before(async () => {
    engine = await openEngine();
    a = engine.node().sessions;
    b = engine.node().sessions;
  });
  after(() => engine.close());

  test('open, read, rotate from the current hash only, revoke once', async () => {
    const id = sid();
    await a.open(open(id, 'h1'));
    assert.equal((await b.get(id))?.refresh_hash, 'h1');
    assert.deepEqual(await b.refreshToken('h1'), { hash: 'h1', session_id: id, created_at: 1000, rotated_at: null });
    assert.equal((await b.sessionOfRefreshToken('h1'))?.id, id);
    assert.equal(await b.sessionOfRefreshToken('nope'), undefined);
    assert.equal(await a.rotate(id, 'h1', 'h2', 2000, 20_000_000), true);
    assert.equal(await b.rotate(id, 'h1', 'h3', 2001, 20_000_000), false, 'h1 is no longer current');
    const row = await b.get(id);
    assert.equal(row?.refresh_hash, 'h2');
    assert.equal(row?.expires_at, 20_000_000);
    assert.equal((await a.refreshToken('h1'))?.rotated_at, 2000);
    assert.equal((await a.refreshToken('h2'))?.rotated_at, null);
    assert.equal(await a.refreshToken('h3'), undefined, 'a lost rotation wrote nothing');
    assert.equal((await b.sessionOfRefreshToken('h1'))?.refresh_hash, 'h2', 'a retired token still names its session');
    assert.deepEqual(await a.activeForNft('7', 3000), [{ id, wallet: '0xabc' }]);
    assert.ok((await a.activeNfts(3000)).includes('7'));
    assert.equal(await a.setSigningKey(id, 'k'.repeat(64)), true);
    assert.equal(await b.signingKey(id), 'k'.repeat(64));
    assert.equal(await a.setSigningKey('nope', 'x'), false);
    assert.equal(await b.revoke(id, 'logout', 4000), true);
    assert.equal(await a.revoke(id, 'refresh_token_reuse', 4001), false, 'revoked once: the first reason stays');
    assert.equal((await a.get(id))?.revoked_why, 'logout');
    assert.equal(await a.rotate(id, 'h2', 'h4', 5000, 20_000_000), false, 'a revoked session does not rotate');
    assert.equal(await a.signingKey(id), undefined, 'no signing key for a revoked session');
    assert.deepEqual(await a.activeForNft('7', 3000), []);
  });

  test('two connections rotating one token at once: exactly one rotation', async () => {
    for (let round = 0; round < 5; round++) {
      const id = sid();
      await a.open(open(id, `r${round}`));
      const wins = await Promise.all([a.rotate(id, `r${round}`, `ra${round}`, 2000, 3e7), b.rotate(id, `r${round}`, `rb${round}`, 2000, 3e7)]);
      assert.equal(wins.filter(Boolean).length, 1, `round ${round}`);
      const cur = (await a.get(id))!.refresh_hash;
      assert.equal(cur, wins[0] ? `ra${round}` : `rb${round}`);
    }
  });

  test('the SessionActor on two nodes: one rotation, the other gets the grace answer; reuse after it revokes; a stale actor accepts the new token', async () => {
    let now = 1_000_000;
    const revoked: string[] = [];
    const kind = (store: SessionStore) => sessionActorKind({ sessions: store, now: () => now, onRevoked: (s, why) => revoked.push(`${s}:${why}`) });
    const self = { key: '', tell() {} };
    const onA = kind(a);
    const onB = kind(b);
    // Open on node A.
    const id = sid();
    const actorA = (await onA.create(id, self)) as Behaviour<SessionMsg, SessionGrant>;
    const grant = await actorA.receive({ type: 'open', wallet: '0xabc', nft: '7' });
    // Node B's actor for the same session, built now (it caches the row).
    const actorB = (await onB.create(id, self)) as Behaviour<SessionMsg, SessionGrant>;
    const key = Buffer.alloc(32, 1);
    const t0 = grant.refreshToken;
    const next0 = nextRefreshToken(key, t0);
    now += 1000;
    // The same refresh reaches both nodes at once.
    const answers = await Promise.allSettled([
      actorA.receive({ type: 'refresh', hash: hashRefreshToken(t0), next: next0, graceMs: 10_000 }),
      actorB.receive({ type: 'refresh', hash: hashRefreshToken(t0), next: next0, graceMs: 10_000 }),
    ]);
    assert.deepEqual(answers.map((r) => r.status), ['fulfilled', 'fulfilled'], 'one rotates, the other answers the same token (grace)');
    const tokens = answers.map((r) => (r as PromiseFulfilledResult<SessionGrant>).value.refreshToken);
    assert.deepEqual(tokens, [next0, next0]);
    assert.equal((await a.get(id))!.refresh_hash, hashRefreshToken(next0), 'one rotation');
    assert.equal(revoked.length, 0);
    // The next refresh with the new token, on whichever node (both actors now hold a row that may be stale).
    now += 1000;
    const next1 = nextRefreshToken(key, next0);
    const g1 = await actorB.receive({ type: 'refresh', hash: hashRefreshToken(next0), next: next1, graceMs: 10_000 });
    assert.equal(g1.refreshToken, next1);
    now += 1000;
    const next2 = nextRefreshToken(key, next1);
    const g2 = await actorA.receive({ type: 'refresh', hash: hashRefreshToken(next1), next: next2, graceMs: 10_000 });
    assert.equal(g2.refreshToken, next2, 'node A, whose cached row was two rotations old, accepts the current token');
    // The first token again, long after: reuse, the session ends for both.
    now += 60_000;
    await assert.rejects(async () => actorB.receive({ type: 'refresh', hash: hashRefreshToken(t0), next: next0, graceMs: 10_000 }),
      (e: unknown) => e instanceof ApiError && e.code === 'UNAUTHORIZED' && /reuse/.test(String(e.details.reason)));
    assert.deepEqual(revoked, [`${id}:refresh_token_reuse`]);
    assert.equal((await a.get(id))!.revoked_why, 'refresh_token_reuse');
    // Node A's actor still believes the session is live: its refresh is refused by the store's answer.
    await assert.rejects(async () => actorA.receive({ type: 'refresh', hash: hashRefreshToken(next2), next: nextRefreshToken(key, next2), graceMs: 10_000 }),
      (e: unknown) => e instanceof ApiError && e.code === 'UNAUTHORIZED');
  });
}
