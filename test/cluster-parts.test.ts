import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startPostgres, startNats, type Postgres, type Nats } from './helpers/engines.js';
import { ShardLeases, FencedError } from '../src/cluster/shard-leases.js';
import { Forwarder } from '../src/cluster/forwarder.js';
import { FrameRelay } from '../src/cluster/frame-relay.js';
import { shardOf, preferredOwner, SHARDS } from '../src/cluster/shards.js';

/**
 * The building blocks of cluster mode against a real PostgreSQL 15 and a real nats-server 2.9,
 * both started here on loopback: shard leases with epochs and fencing, forwarding over NATS
 * request/reply with failover retried as latency, and cross-node frames batched per turn.
 */
let pg: Postgres;
let nats: Nats;
const sqls: postgres.Sql[] = [];
const conns: NatsConnection[] = [];
const sql = () => {
  const s = postgres(pg.url, { max: 4, onnotice: () => {} });
  sqls.push(s);
  return s;
};
const nc = async () => {
  const c = await connect({ servers: nats.url, noEcho: true });
  conns.push(c);
  return c;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  const s = sql();
  await ShardLeases.migrate(s);
  await s`CREATE TABLE owned_writes (shard int, epoch bigint, node text, n int)`;
});
after(async () => {
  for (const c of conns) await c.close().catch(() => {});
  for (const s of sqls) await s.end({ timeout: 1 }).catch(() => {});
  pg?.stop();
  nats?.stop();
});

describe('shards', () => {
  test('an NFT always hashes to the same shard; rendezvous placement moves ~1/N shards when a node joins', () => {
    assert.equal(shardOf('42'), shardOf('42'));
    const counts = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) counts.set(shardOf(String(i)), (counts.get(shardOf(String(i))) ?? 0) + 1);
    assert.equal(counts.size, SHARDS);
    const three = ['a', 'b', 'c'];
    const four = [...three, 'd'];
    let moved = 0;
    for (let s = 0; s < SHARDS; s++) if (preferredOwner(s, three) !== preferredOwner(s, four)) moved++;
    assert.ok(moved > SHARDS / 8 && moved < SHARDS / 2.5, `moved ${moved}`);
    for (let s = 0; s < SHARDS; s++) if (preferredOwner(s, three) !== preferredOwner(s, four)) assert.equal(preferredOwner(s, four), 'd');
  });
});

describe('shard leases (PostgreSQL)', () => {
  test('one owner per shard; epochs only go up; a node that stopped renewing is fenced by the database', async () => {
    // A trusts its lease far longer than the database does (as a node paused by SIGSTOP would
    // believe its stale clock): the database fence must still refuse its write.
    const a = new ShardLeases(sql(), 'node-a', 1500, -60_000);
    const b = new ShardLeases(sql(), 'node-b', 1500, 100);
    const la = await a.claim(7);
    assert.ok(la);
    assert.equal(await b.claim(7), undefined, 'held: B cannot claim');
    await a.fenced(7, (tx) => tx`INSERT INTO owned_writes VALUES (7, ${la.epoch}, 'node-a', 1)`);
    await sleep(1700); // A "paused": no renewal past the TTL
    const lb = await b.claim(7);
    assert.ok(lb && lb.epoch > la.epoch, `epoch ${la.epoch} -> ${lb?.epoch}`);
    await assert.rejects(a.fenced(7, (tx) => tx`INSERT INTO owned_writes VALUES (7, ${la.epoch}, 'node-a', 2)`), FencedError);
    await b.fenced(7, (tx) => tx`INSERT INTO owned_writes VALUES (7, ${lb.epoch}, 'node-b', 3)`);
    const rows = await sql()`SELECT node, n FROM owned_writes WHERE shard = 7 ORDER BY n`;
    assert.deepEqual(rows.map((r) => `${r.node}:${r.n}`), ['node-a:1', 'node-b:3']);
    // A's renewal notices the loss: the shard is reported lost (to be passivated at once).
    assert.deepEqual(await a.renew(), [7]);
    await b.release(7);
  });

  test('a node trusts its lease only until sent_at + ttl - margin on its own clock', async () => {
    const a = new ShardLeases(sql(), 'node-c', 3000, 1000);
    assert.ok(await a.claim(9));
    assert.ok(a.lease(9));
    await sleep(2100);
    assert.equal(a.lease(9), undefined, 'past ttl - margin it stops acting before the database lets another node claim');
    await assert.rejects(a.fenced(9, async () => 1), FencedError);
    await a.releaseAll();
  });

  test('renewal: every held shard in one statement; racing nodes end with exactly one owner per shard', async () => {
    const nodes = ['n1', 'n2', 'n3'].map((n) => new ShardLeases(sql(), n, 5000));
    await Promise.all(nodes.map(async (n) => {
      for (let s = 100; s < 160; s++) await n.claim(s);
    }));
    const owners = await sql()`SELECT shard, owner FROM shard_leases WHERE shard >= 100 AND shard < 160`;
    assert.equal(owners.length, 60);
    const held = nodes.reduce((k, n) => k + n.leases().length, 0);
    assert.equal(held, 60, 'each shard held by exactly one node');
    for (const r of owners) assert.ok(nodes.find((n) => n.nodeId === r.owner)!.lease(r.shard));
    for (const n of nodes) assert.deepEqual(await n.renew(), []);
    for (const n of nodes) await n.releaseAll();
    const free = await sql()`SELECT count(*)::int AS c FROM shard_leases WHERE shard >= 100 AND shard < 160 AND owner IS NULL`;
    assert.equal(free[0]!.c, 60, 'released on drain');
  });
});

describe('forwarding (NATS request/reply)', () => {
  test('an ask reaches the owning node; a failover shows as latency, not an error', async () => {
    const owner = new Forwarder(await nc());
    const asker = new Forwarder(await nc());
    owner.serve(3, async (m) => ({ value: { echo: m, by: 'owner' } }));
    await (owner as any).nc.flush();
    assert.deepEqual(await asker.ask(3, { q: 1 }, 2000), { echo: { q: 1 }, by: 'owner' });
    // The owner dies; a new owner takes the shard 300 ms later.
    owner.unserve(3);
    const next = new Forwarder(await nc());
    setTimeout(() => next.serve(3, async (m) => ({ value: { echo: m, by: 'next' } })), 300);
    const t0 = performance.now();
    // The old owner's subscription answered "not owner" for a moment (it did nothing), so the ask
    // reaches the next owner marked as sent before.
    assert.deepEqual(await asker.ask(3, { q: 2 }, 3000), { echo: { q: 2, again: 1 }, by: 'next' });
    const ms = performance.now() - t0;
    assert.ok(ms >= 250 && ms < 3000, `answered after ${ms.toFixed(0)} ms`);
    // "Not owner" is retried the same way; the owner's errors come back as the spec's errors.
    let calls = 0;
    next.unserve(3);
    next.serve(3, async () => (++calls < 3 ? undefined : { value: 'ok' }));
    assert.equal(await asker.ask(3, {}, 3000), 'ok');
    next.unserve(3);
    next.serve(3, async () => {
      throw Object.assign(new Error('x'), {});
    });
    await assert.rejects(asker.ask(3, {}, 1000), (e: any) => e.code === 'INTERNAL_ERROR');
    next.unserve(3);
    await assert.rejects(asker.ask(4, {}, 300), (e: any) => e.code === 'SERVICE_UNAVAILABLE' && e.details.reason === 'no_owner');
  });
});

describe('frames across nodes (NATS)', () => {
  test('frames of one turn travel as one message, split and published as they are, in order', async () => {
    const gotB: string[] = [];
    const a = new FrameRelay(await nc(), () => {});
    const bConn = await nc();
    const b = new FrameRelay(bConn, (topic, f) => topic === 'chat:c1' && gotB.push(f));
    b.follow('chat:c1');
    b.follow('chat:c1'); // two local followers: one subscription
    await bConn.flush();
    const frames: string[] = [];
    for (let turn = 0; turn < 20; turn++) {
      for (let i = 0; i < 50; i++) {
        const f = JSON.stringify({ type: 'chat_chunk', conversation_id: 'c1', done: false, content: `t${turn} i${i} "q" \\n` });
        frames.push(f);
        a.publish('chat:c1', f);
      }
      await new Promise((r) => setImmediate(r));
    }
    await (a as any).nc.flush();
    const until = Date.now() + 5000;
    while (gotB.length < frames.length && Date.now() < until) await sleep(20);
    assert.deepEqual(gotB, frames);
    assert.ok(a.stats.messages <= 21, `${a.stats.messages} NATS messages for ${a.stats.frames} frames`);
    b.unfollow('chat:c1');
    b.unfollow('chat:c1');
    a.publish('chat:c1', '{"after":true}');
    a.flush();
    await sleep(100);
    assert.equal(gotB.length, frames.length, 'no frames once no local socket follows');
  });

  test('a loop turn whose frames pass NATS max_payload goes in several messages, none lost, in order', async () => {
    const got: string[] = [];
    const a = new FrameRelay(await nc(), () => {});
    const bConn = await nc();
    const b = new FrameRelay(bConn, (_topic, f) => got.push(f));
    b.follow('chat:big');
    await bConn.flush();
    // 3 MB in one turn of the event loop (the default max_payload is 1 MB).
    const frames = Array.from({ length: 12 }, (_, i) => JSON.stringify({ i, content: 'x'.repeat(250_000) }));
    for (const f of frames) a.publish('chat:big', f);
    a.flush();
    await (a as any).nc.flush();
    const until = Date.now() + 5000;
    while (got.length < frames.length && Date.now() < until) await sleep(20);
    assert.equal(a.stats.dropped, 0);
    assert.ok(a.stats.messages > 1);
    assert.deepEqual(got.map((f) => JSON.parse(f).i), frames.map((_, i) => i));
    b.unfollow('chat:big');
  });
});

describe('the cluster switch', () => {
  test('PANTHERS_DATABASE_URL and PANTHERS_NATS_URL: both make a cluster node, one alone is a configuration error naming the other', async () => {
    const { loadConfig } = await import('../src/config.js');
    assert.throws(() => loadConfig({ PANTHERS_DATABASE_URL: pg.url }), /PANTHERS_NATS_URL is required with PANTHERS_DATABASE_URL/);
    assert.throws(() => loadConfig({ PANTHERS_NATS_URL: nats.url }), /PANTHERS_DATABASE_URL is required with PANTHERS_NATS_URL/);
    assert.throws(() => loadConfig({ PANTHERS_DATABASE_URL: 'mysql://x', PANTHERS_NATS_URL: nats.url }), /PANTHERS_DATABASE_URL must be a postgres/);
    assert.throws(() => loadConfig({ PANTHERS_DATABASE_URL: pg.url, PANTHERS_NATS_URL: nats.url, PANTHERS_NODE_ID: 'a.b' }), /PANTHERS_NODE_ID/);
    const c = loadConfig({ PANTHERS_DATABASE_URL: pg.url, PANTHERS_NATS_URL: nats.url });
    assert.ok(c.cluster && /^node-/.test(c.cluster.nodeId));
    assert.equal(loadConfig({ PANTHERS_DATABASE_URL: pg.url, PANTHERS_NATS_URL: nats.url }).cluster!.nodeId, c.cluster.nodeId, 'the generated id is stable for the process');
    assert.equal(loadConfig({ PANTHERS_DATABASE_URL: pg.url, PANTHERS_NATS_URL: nats.url, PANTHERS_NODE_ID: 'n1' }).cluster!.nodeId, 'n1');
    assert.equal(loadConfig({}).cluster, undefined);
  });
});
