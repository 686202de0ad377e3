import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { startEngines, type Engines } from './helpers/cluster.js';
import { waitFor } from './helpers/server.js';
import { createLogger } from '../src/logger.js';
import { loadConfig } from '../src/config.js';
import { ClusterNode, type ShardLoss } from '../src/cluster/cluster-node.js';
import { FencedError } from '../src/cluster/shard-leases.js';
import { SHARDS, shardOf } from '../src/cluster/shards.js';

/**
 * The lease loop of ClusterNode in this process against a real PostgreSQL and NATS: a shard whose
 * renewal finds another owner is passivated at once; a node that loses PostgreSQL stops serving
 * every shard when its trust window ends, and the other node takes them over; fences exist only
 * for held, trusted shards.
 */
const TTL = 2000;
let engines: Engines;
const nodes: ClusterNode[] = [];
const log = createLogger({ level: 'silent' });

function makeNode(id: string) {
  const cfg = loadConfig({ PANTHERS_DATABASE_URL: engines.pg.url, PANTHERS_NATS_URL: engines.nats.url, PANTHERS_NODE_ID: id, PANTHERS_CLUSTER_LEASE_TTL_MS: String(TTL), PANTHERS_CLUSTER_RENEW_MS: '200' }).cluster!;
  const node = new ClusterNode(cfg, log);
  nodes.push(node);
  const events: { shard: number; why: ShardLoss | 'gained' }[] = [];
  const hooks = {
    gained: (shard: number) => void events.push({ shard, why: 'gained' }),
    lost: (shard: number, why: ShardLoss) => void events.push({ shard, why }),
    drain: async () => {},
  };
  return { node, events, hooks };
}

before(async () => {
  engines = await startEngines();
});
after(async () => {
  for (const n of nodes) await n.stop().catch(() => {});
  engines?.stop();
});

describe('ClusterNode lease loop', () => {
  test('fences only for held shards; a shard claimed by another node after an expiry is passivated at the next renewal', async () => {
    const a = makeNode('loop-a');
    await a.node.connect();
    await a.node.start(a.hooks);
    assert.equal(a.node.owned().length, SHARDS);
    const nft = 'fence-me';
    const f = a.node.fenceFor(nft);
    assert.deepEqual(f, { shard: shardOf(nft), epoch: 1, node: 'loop-a' });
    assert.equal(a.node.ownedEpoch(f.shard), 1);
    // Another writer takes the shard (as after an expiry the database saw and this node did not).
    const sql = postgres(engines.pg.url, { max: 1, onnotice: () => {} });
    await sql`UPDATE shard_leases SET owner = 'thief', epoch = epoch + 1, expires_at = now() + interval '1 minute' WHERE shard = ${f.shard}`;
    await sql.end();
    const t0 = Date.now();
    await waitFor(() => a.events.some((e) => e.shard === f.shard && e.why === 'lost'), 2000, 10);
    assert.ok(Date.now() - t0 < 1000, 'passivated within a renewal interval or so');
    assert.equal(a.node.serves(f.shard), false);
    assert.equal(a.node.ownedEpoch(f.shard), undefined);
    assert.throws(() => a.node.fenceFor(nft), FencedError);
    assert.equal(a.node.stats.lost, 1);
  });

  test('a node that loses PostgreSQL stops serving when its trust window ends; the other takes every shard within lease time + 2 s', async () => {
    const a = nodes[0]!;
    const b = makeNode('loop-b');
    await b.node.connect();
    await b.node.start(b.hooks);
    // b joins: a hands it the shards it hashes highest for.
    await waitFor(() => b.node.owned().length > SHARDS / 4, 15_000, 50);
    const held = b.node.owned().map((l) => l.shard);
    const cut = performance.now();
    await b.node.sql.end({ timeout: 0 });
    await waitFor(() => b.node.owned().length === 0 && held.every((s) => b.events.some((e) => e.shard === s && e.why === 'expired')), TTL + 1000, 20);
    const stoppedAfter = performance.now() - cut;
    assert.ok(stoppedAfter < TTL, `b stopped serving after ${Math.round(stoppedAfter)} ms, before its lease could expire in the database (${TTL} ms)`);
    await waitFor(() => held.every((s) => a.serves(s)), TTL + 2000, 20);
    const tookOver = performance.now() - cut;
    assert.ok(tookOver < TTL + 2000, `a took over after ${Math.round(tookOver)} ms`);
    assert.equal(b.node.pgUp, false);
    // The thief's shard (test 1) is not a's until its one-minute lease expires: a never steals.
    assert.equal(a.owned().length, SHARDS - 1);
  });
});
