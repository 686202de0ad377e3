import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { startNats, type Nats } from './helpers/engines.js';
import { authenticatedLink, checkMac, clusterMacKey, macValue, MAC_HEADER } from '../src/cluster/cluster-mac.js';
import { Forwarder } from '../src/cluster/forwarder.js';
import { FrameRelay } from '../src/cluster/frame-relay.js';
import { NatsRevocations } from '../src/cluster/revocations.js';
import { NatsInvalidations } from '../src/cluster/invalidations.js';
import { RateSync } from '../src/cluster/rate-sync.js';
import { RateLimiter } from '../src/guards/rate-limiter.js';
import { DEFAULT_RATE_LIMITS } from '../src/config.js';

/**
 * The cluster MAC (review.md item 1) over a real nats-server: what a plain NATS client without
 * PANTHERS_CLUSTER_SECRET publishes (a forwarded ask, a reply to one, a revoke, a frame, an
 * invalidation, rate-limit counts) is dropped and counted; a node with another secret is not
 * heard; nodes with the same secret work as before.
 */
const SECRET = 'test-cluster-secret-0123456789abcdef';
const OTHER = 'another-cluster-secret-0123456789abcdef';
let nats: Nats;
const conns: NatsConnection[] = [];
const raw = async () => {
  const c = await connect({ servers: nats.url, noEcho: true });
  conns.push(c);
  return c;
};
const node = async (secret = SECRET) => authenticatedLink(await raw(), secret);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const enc = new TextEncoder();

before(async () => {
  nats = await startNats();
});
after(async () => {
  for (const c of conns) await c.close().catch(() => {});
  nats?.stop();
});

describe('cluster MAC', () => {
  test('a MAC binds key, subject, body and time; it costs a few µs per message', () => {
    const key = clusterMacKey(SECRET);
    const body = enc.encode(JSON.stringify({ k: 'agent', key: '0xabc:1', m: { type: 'turn', wallet: '0x' + 'a'.repeat(40), content: 'hello '.repeat(30) } }));
    const now = Date.now();
    const v = macValue(key, 'panthers.shard.3', body, now);
    assert.equal(checkMac(key, 'panthers.shard.3', body, v, now), 'ok');
    assert.equal(checkMac(key, 'panthers.shard.4', body, v, now), 'bad', 'another subject');
    assert.equal(checkMac(key, 'panthers.shard.3', enc.encode('{}'), v, now), 'bad', 'another body');
    assert.equal(checkMac(clusterMacKey(OTHER), 'panthers.shard.3', body, v, now), 'bad', 'another secret');
    assert.equal(checkMac(key, 'panthers.shard.3', body, undefined, now), 'missing');
    assert.equal(checkMac(key, 'panthers.shard.3', body, 'garbage', now), 'bad');
    assert.equal(checkMac(key, 'panthers.shard.3', body, v.replace(/^\d+/, String(now + 1)), now), 'bad', 'the timestamp is under the MAC');
    assert.equal(checkMac(key, 'panthers.shard.3', body, v, now + 30_001), 'stale');
    assert.equal(checkMac(key, 'panthers.shard.3', body, v, now - 30_001), 'stale', 'from the future');
    // Cost per message: the sender signs once, each receiver verifies once.
    const N = 20_000;
    let t0 = performance.now();
    let last = '';
    for (let i = 0; i < N; i++) last = macValue(key, 'panthers.shard.3', body, now);
    const signUs = ((performance.now() - t0) * 1000) / N;
    t0 = performance.now();
    for (let i = 0; i < N; i++) checkMac(key, 'panthers.shard.3', body, last, now);
    const verifyUs = ((performance.now() - t0) * 1000) / N;
    console.log(`# cluster MAC on a ${body.length} B message: sign ${signUs.toFixed(2)} µs, verify ${verifyUs.toFixed(2)} µs`);
    // A few µs on an idle core; the bound is loose for a shared, loaded CI machine.
    assert.ok(signUs + verifyUs < 60, `${(signUs + verifyUs).toFixed(1)} µs per message`);
  });

  test('a forged forwarded ask (no key, another key, stale) never reaches the owner; a forged reply never reaches the asker', async () => {
    const ownerConn = await node();
    const owner = new Forwarder(ownerConn);
    const asked: unknown[] = [];
    owner.serve(3, async (m) => {
      asked.push(m);
      await sleep(50); // the forger answers first
      return { value: { by: 'owner', m } };
    });
    await ownerConn.flush();
    const plain = await raw();
    // No header at all.
    await assert.rejects(plain.request('panthers.shard.3', enc.encode(JSON.stringify({ k: 'deployment', key: 'x', m: { type: 'stop' } })), { timeout: 300 }), 'no answer');
    // A header made with another key, and one made with the right key 60 s ago.
    const body = enc.encode('{"k":"deployment","key":"x","m":{"type":"stop"}}');
    for (const v of [macValue(clusterMacKey(OTHER), 'panthers.shard.3', body, Date.now()), macValue(clusterMacKey(SECRET), 'panthers.shard.3', body, Date.now() - 60_000)]) {
      const h = headers();
      h.set(MAC_HEADER, v);
      // Published without a reply subject (the owner would still run it) so the MAC input matches.
      plain.publish('panthers.shard.3', body, { headers: h });
    }
    await plain.flush();
    await sleep(200);
    assert.deepEqual(asked, [], 'the owner ran no forged ask');
    assert.deepEqual({ missing: ownerConn.macStats.missing, bad: ownerConn.macStats.bad, stale: ownerConn.macStats.stale }, { missing: 1, bad: 1, stale: 1 });

    // A plain client also subscribed to the shard answers at once; the asker waits for the owner's.
    const forger = await raw();
    forger.subscribe('panthers.shard.3', { callback: (_e, m) => void m.respond(enc.encode(JSON.stringify({ ok: { by: 'forger' } }))) });
    await forger.flush();
    const askerConn = await node();
    const asker = new Forwarder(askerConn);
    assert.deepEqual(await asker.ask(3, { q: 1 }, 3000), { by: 'owner', m: { q: 1 } });
    assert.ok(askerConn.macStats.missing >= 1, 'the forged reply was dropped and counted');
    // Replay: a captured authentic ask republished (same MAC, same reply subject, within 30 s)
    // is not run again; with another reply subject or none its MAC no longer checks out.
    const captured = await raw();
    const caught: { data: Uint8Array; reply?: string; mac?: string }[] = [];
    captured.subscribe('panthers.shard.3', { callback: (_e, m) => void caught.push({ data: m.data, reply: m.reply, mac: m.headers?.get(MAC_HEADER) }) });
    await captured.flush();
    const runs = asked.length;
    await asker.ask(3, { q: 'once' }, 3000);
    assert.equal(asked.length, runs + 1);
    const c = caught.find((x) => new TextDecoder().decode(x.data).includes('once'))!;
    const h = headers();
    h.set(MAC_HEADER, c.mac!);
    plain.publish('panthers.shard.3', c.data, { reply: c.reply, headers: h });
    plain.publish('panthers.shard.3', c.data, { reply: '_INBOX.attacker', headers: h });
    plain.publish('panthers.shard.3', c.data, { headers: h });
    await plain.flush();
    await sleep(200);
    assert.equal(asked.length, runs + 1, 'the replayed ask did not run');
    assert.equal(ownerConn.macStats.replayed, 1);
    assert.equal(ownerConn.macStats.bad, 3, 'other key + two replays with another reply subject / none');
    // No responders still shows as no owner (retried, then given up), not as a hang.
    await assert.rejects(asker.ask(9, {}, 300), (e: any) => e.code === 'SERVICE_UNAVAILABLE' && e.details.reason === 'no_owner');
  });

  test('a node with another secret cannot ask, and is not heard on revocations, frames, invalidations or rate limits', async () => {
    const ownerConn = await node();
    const owner = new Forwarder(ownerConn);
    owner.serve(5, async () => ({ value: 'ok' }));
    await ownerConn.flush();
    const good = new Forwarder(await node());
    assert.equal(await good.ask(5, {}, 2000), 'ok');
    const stranger = new Forwarder(await node(OTHER));
    await assert.rejects(stranger.ask(5, {}, 500), (e: any) => e.code === 'SERVICE_UNAVAILABLE');
    assert.ok(ownerConn.macStats.bad >= 1);

    // Revocations: a plain publish and another secret's are ignored; the same secret's arrives.
    const revokedConn = await node();
    const rev = new NatsRevocations(revokedConn);
    const revoked: string[] = [];
    rev.onRevoked((sid) => revoked.push(sid));
    const fromStranger = new NatsRevocations(await node(OTHER));
    const fromPeer = new NatsRevocations(await node());
    await revokedConn.flush();
    const plain = await raw();
    plain.publish('panthers.revoke', enc.encode(JSON.stringify({ sid: 'victim-1', why: 'forged' })));
    fromStranger.broadcast('victim-2', 'forged');
    fromPeer.broadcast('real', 'logout');

    // Frames: a follower gets only frames a node with the key published.
    const followerConn = await node();
    const frames: string[] = [];
    const follower = new FrameRelay(followerConn, (_t, f) => frames.push(f));
    follower.follow('chat:c1');
    const peerRelay = new FrameRelay(await node(), () => {});
    await followerConn.flush();
    plain.publish('panthers.frames.chat.c1', enc.encode('{"type":"chat_chunk","content":"forged"}\n'));
    peerRelay.publish('chat:c1', '{"type":"chat_chunk","content":"real"}');
    peerRelay.flush();

    // Invalidations.
    const invConn = await node();
    const inv = new NatsInvalidations(invConn);
    const invalidated: string[] = [];
    inv.onInvalidate('session', (k) => invalidated.push(k));
    await invConn.flush();
    plain.publish('panthers.invalidate.session', enc.encode('forged'));
    new NatsInvalidations(await node()).invalidate('session', 'real');

    // Rate limits: forged counts would lock a key out; they are dropped.
    const limiter = new RateLimiter(DEFAULT_RATE_LIMITS);
    const rsConn = await node();
    const sync = new RateSync(rsConn, limiter, 60_000);
    await rsConn.flush();
    const now = Date.now();
    plain.publish('panthers.ratelimit', enc.encode(JSON.stringify({ w: now - (now % 60_000), c: [['auth\0victim', 1000]] })));

    await plain.flush();
    await sleep(300);
    assert.deepEqual(revoked, ['real']);
    assert.deepEqual(frames, ['{"type":"chat_chunk","content":"real"}']);
    assert.deepEqual(invalidated, ['real']);
    assert.equal(limiter.peek('auth', 'victim').ok, true, 'forged counts did not lock the key');
    assert.ok(revokedConn.macStats.missing >= 1 && revokedConn.macStats.bad >= 1);
    assert.ok(followerConn.macStats.missing >= 1 && invConn.macStats.missing >= 1 && rsConn.macStats.missing >= 1);
    sync.close();
  });

  test('synced rate-limit counts are clamped: a huge or unknown-class count from a peer cannot overflow the limiter', () => {
    const limiter = new RateLimiter(DEFAULT_RATE_LIMITS);
    limiter.enableSync();
    const now = Date.now();
    limiter.peek('auth', 'k');
    const w = now - (now % 60_000);
    limiter.addRemote(w, [['auth\0k', 1e12], ['auth\0k', 1e12], ['nope\0k', 5], ['auth\0j', 2.7]]);
    const d = limiter.peek('auth', 'k');
    assert.equal(d.ok, false);
    assert.equal(d.remaining, 0);
    assert.equal((limiter as any).remote.get('auth\0k'), DEFAULT_RATE_LIMITS.auth + 1, 'clamped to limit + 1');
    assert.equal((limiter as any).remote.has('nope\0k'), false, 'unknown class dropped');
    assert.equal((limiter as any).remote.get('auth\0j'), 2, 'whole counts');
  });
});
