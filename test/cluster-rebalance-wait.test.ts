import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEngines, type Engines } from './helpers/cluster.js';
import { waitFor } from './helpers/server.js';
import { createLogger } from '../src/logger.js';
import { loadConfig } from '../src/config.js';
import { ClusterNode } from '../src/cluster/cluster-node.js';
import { SHARDS, preferredOwner } from '../src/cluster/shards.js';

/**
 * A rebalance (a node joins) has no deadline: a shard with a turn still streaming is not moved
 * (its drain would cut a turn longer than the drain bound) until nothing of it is running; the
 * others move at once. Real PostgreSQL and NATS; the shard's actors are the hooks' answer.
 */
let engines: Engines;
const nodes: ClusterNode[] = [];
const log = createLogger({ level: 'silent' });

before(async () => {
  engines = await startEngines();
});
after(async () => {
  for (const n of nodes) await n.stop().catch(() => {});
  engines?.stop();
});

function makeNode(id: string, busy: Set<number>) {
  const cfg = loadConfig({ PANTHERS_DATABASE_URL: engines.pg.url, PANTHERS_NATS_URL: engines.nats.url, PANTHERS_NODE_ID: id, PANTHERS_CLUSTER_LEASE_TTL_MS: '2000', PANTHERS_CLUSTER_RENEW_MS: '200', PANTHERS_CLUSTER_REBALANCE_BATCH: '256' }).cluster!;
  const node = new ClusterNode(cfg, log);
  nodes.push(node);
  const drained: number[] = [];
  const hooks = {
    gained: () => undefined,
    lost: () => undefined,
    drain: async (shard: number) => void drained.push(shard),
    movable: (shard: number) => !busy.has(shard),
  };
  return { node, hooks, drained };
}

test('a joining node gets the idle shards at once; a shard with a turn streaming moves only once it is idle', async () => {
  const busy = new Set<number>();
  const a = makeNode('wait-a', busy);
  await a.node.connect();
  await a.node.start(a.hooks);
  assert.equal(a.node.owned().length, SHARDS);
  const toB = Array.from({ length: SHARDS }, (_, s) => s).filter((s) => preferredOwner(s, ['wait-a', 'wait-b']) === 'wait-b');
  for (const s of toB.slice(0, 3)) busy.add(s);
  const b = makeNode('wait-b', new Set());
  await b.node.connect();
  await b.node.start(b.hooks);
  await waitFor(() => b.node.owned().length === toB.length - 3 || undefined, 15_000, 50);
  await new Promise((r) => setTimeout(r, 1000));
  for (const s of busy) assert.ok(a.node.serves(s), `busy shard ${s} stays on its node`);
  assert.equal(b.node.owned().length, toB.length - 3, 'every idle shard moved');
  assert.ok(!a.drained.some((s) => busy.has(s)), 'no busy shard was drained');
  busy.clear(); // the turns ended
  await waitFor(() => b.node.owned().length === toB.length || undefined, 10_000, 50);
  for (const s of toB) assert.equal(a.node.serves(s), false);
});
