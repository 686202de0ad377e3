import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { startEngines, type Engines } from './helpers/cluster.js';
import { waitFor } from './helpers/server.js';
import { createLogger } from '../src/logger.js';
import { loadConfig } from '../src/config.js';
import { ClusterNode, type ShardLoss } from '../src/cluster/cluster-node.js';

/**
 * A node whose event loop stood still past its trust window, while the database still held its
 * leases (a loaded machine): it stops serving its shards, and when the next renewal succeeds it
 * serves them again only at a NEW epoch. At the old epoch, writes still in flight from the
 * stopped actors would pass the fence beside the new actors' writes (a cluster soak found a
 * stopped turn's reply stored between the next turn's message and its reply).
 */
const TTL = 5000; // trust: 4 s after a renewal is sent; the database's lease: 5 s
let engines: Engines;
let node: ClusterNode | undefined;

before(async () => {
  engines = await startEngines();
});
after(async () => {
  await node?.stop().catch(() => {});
  engines?.stop();
});

test('a lease whose trust lapsed while the database kept it is served again at a new epoch', async () => {
  const cfg = loadConfig({ PANTHERS_DATABASE_URL: engines.pg.url, PANTHERS_NATS_URL: engines.nats.url, PANTHERS_NODE_ID: 'lapse-a', PANTHERS_CLUSTER_LEASE_TTL_MS: String(TTL), PANTHERS_CLUSTER_RENEW_MS: '200' }).cluster!;
  const n = (node = new ClusterNode(cfg, createLogger({ level: 'silent' })));
  const events: { shard: number; why: ShardLoss | 'gained' }[] = [];
  await n.connect();
  await n.start({ gained: (shard) => void events.push({ shard, why: 'gained' }), lost: (shard, why) => void events.push({ shard, why }), drain: async () => {} });
  const before = new Map(n.owned().map((l) => [l.shard, l.epoch]));
  assert.ok(before.size > 0);
  events.length = 0;
  // Right after a renewal, the loop stands still for longer than the trust window (4 s), not as
  // long as the database's lease (5 s).
  const renewals = n.stats.renewals;
  await waitFor(() => n.stats.renewals > renewals, 2000, 5);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, TTL - 900);
  await waitFor(() => n.owned().length === before.size, 3000, 20);
  for (const [shard, epoch] of before) {
    const mine = events.filter((e) => e.shard === shard).map((e) => e.why);
    assert.deepEqual(mine, ['expired', 'gained'], `shard ${shard}: stopped when its trust lapsed, then served again`);
    assert.equal(n.ownedEpoch(shard), epoch + 1, `shard ${shard}: served again at a new epoch`);
  }
  const sql = postgres(engines.pg.url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ shard: number; epoch: string; owner: string }[]>`SELECT shard, epoch, owner FROM shard_leases WHERE shard = ANY(${[...before.keys()]})`;
    for (const r of rows) {
      assert.equal(r.owner, 'lapse-a');
      assert.equal(Number(r.epoch), before.get(r.shard)! + 1, 'a write fenced at the old epoch is refused by the database');
    }
  } finally {
    await sql.end();
  }
});
