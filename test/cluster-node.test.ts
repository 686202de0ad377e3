import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEngines, startClusterNodes, shardOwners, waitForBalance, type Engines, type Cluster } from './helpers/cluster.js';
import { waitFor, request } from './helpers/server.js';
import { signInProcess } from './helpers/process-sign-in.js';
import { openWs } from './helpers/ws.js';
import { SHARDS, preferredOwner, shardOf } from '../src/cluster/shards.js';

/**
 * Cluster mode end to end: real `panthers serve` processes on one real PostgreSQL 15 and one real
 * nats-server 2.9 (started here). Leases: every shard has exactly one owner, a joining node takes
 * about 1/N of them, a SIGTERMed node's shards are taken by the others within lease time + 2 s;
 * /health and /metrics name the node; a WS subscriber on node A gets the deployment_status
 * frames of a deployment made through node B.
 */
const TTL_MS = 3000;

/** An NFT id (prefix + n) whose shard `node` owns now. */
function nftOwnedBy(owners: Map<number, string>, node: string, prefix: string): string {
  for (let i = 0; ; i++) if (owners.get(shardOf(prefix + i)) === node) return prefix + i;
}
let engines: Engines;
let cluster: Cluster;

before(async () => {
  engines = await startEngines();
  cluster = await startClusterNodes(2, engines, { leaseTtlMs: TTL_MS });
});
after(async () => {
  await cluster?.stop().catch(() => {});
  engines?.stop();
});

describe('cluster node', () => {
  test('every shard has exactly one owner; /health and /metrics show the node id, its shards and lease epochs', async () => {
    const owners = await waitForBalance(engines, cluster.nodes.map((n) => n.nodeId));
    assert.equal(owners.size, SHARDS);
    const healths = await Promise.all(cluster.nodes.map((n) => n.health()));
    const seen = new Set<number>();
    for (const [i, h] of healths.entries()) {
      assert.equal(h.status, 'healthy');
      assert.equal(h.cluster.node_id, cluster.nodes[i]!.nodeId);
      assert.equal(h.cluster.postgres, 'up');
      assert.equal(h.cluster.nats, 'connected');
      assert.deepEqual(h.cluster.nodes_live, cluster.nodes.map((n) => n.nodeId).sort());
      assert.equal(h.cluster.shards_owned, h.cluster.leases.length);
      for (const l of h.cluster.leases) {
        assert.ok(!seen.has(l.shard), `shard ${l.shard} served by two nodes`);
        seen.add(l.shard);
        assert.equal(owners.get(l.shard), h.cluster.node_id);
        assert.ok(l.epoch >= 1);
      }
    }
    assert.equal(seen.size, SHARDS, 'the nodes together serve every shard');
    const m = await request(cluster.nodes[0]!.url, 'GET', '/metrics');
    assert.match(m.text, new RegExp(`cluster_node_info\\{node_id="${cluster.nodes[0]!.nodeId}"\\} 1`));
    assert.match(m.text, new RegExp(`cluster_shards_owned ${healths[0].cluster.shards_owned}\\b`));
    assert.match(m.text, /cluster_lease_epoch\{shard="\d+"\} \d+/);
    assert.match(m.text, /cluster_fencing_refusals_total 0/);
    assert.match(m.text, /cluster_forwards_total\{outcome="asked"\}/);
    assert.match(m.text, /cluster_nats_connected 1/);
  });

  test('a WS subscriber on node A receives the deployment_status frames of a deployment made through node B and run by its owner; chat through the other node', async () => {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const owners = await shardOwners(engines);
    // The deployment runs on the NFT's owner (B here), is asked for through B, watched from A.
    const nft = nftOwnedBy(owners, b.nodeId, 'cluster-ws-');
    const token = await signInProcess(a.url, engines.pg.url, nft);
    const sub = await openWs(a.url, token);
    try {
      sub.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: nft }));
      await sub.next((f) => f.type === 'subscribed');
      const r = await request(b.url, 'POST', '/v1/deployments', { token, body: { nft_token_id: nft, provider: 'local' } });
      assert.equal(r.status, 202, r.text);
      const running = await sub.next((f) => f.type === 'deployment_status' && f.status === 'running', 15_000);
      assert.equal(running.nft_token_id, nft);
      const progress = sub.frames.filter((f) => f.type === 'deployment_status').map((f) => f.progress);
      assert.deepEqual(progress, [...progress].sort((x, y) => x - y), 'in order');
      // The cached view on A was dropped: A reads the deployment B made.
      const g = await request(a.url, 'GET', `/v1/deployments/${nft}`, { token });
      assert.equal(g.status, 200, g.text);
      assert.equal(g.body.status, 'running');
      const m = await request(a.url, 'GET', '/metrics');
      assert.match(m.text, /cluster_frames_total\{direction="received"\} [1-9]/, 'A got the frames over NATS');
      // A chat turn sent to A runs on B (the owner) and answers through A.
      const chat = await request(a.url, 'POST', `/v1/agents/${nft}/chat`, { token, body: { message: 'Hello from the other node' } });
      assert.equal(chat.status, 200, chat.text);
      assert.ok(chat.body.response.length > 0);
      const hb = await b.health();
      assert.ok(hb.cluster.forwards.served > 0, 'B served forwarded asks');
      // WS chat on A, agent on B: the chunks arrive once each, in order, and make the reply; an HTTP
      // turn on the same conversation sent to B reaches A's socket through NATS.
      sub.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, message: 'over the socket' }));
      const subscribed = await sub.next((f) => f.type === 'subscribed' && f.channel === 'chat', 10_000);
      const done = await sub.next((f) => f.type === 'chat_chunk' && f.done === true, 15_000);
      await new Promise((r) => setTimeout(r, 200));
      const chunks = sub.frames.filter((f) => f.type === 'chat_chunk' && !f.done);
      assert.equal(chunks.map((f) => f.content).join(''), done.response, 'each chunk once, in order');
      assert.equal(sub.frames.filter((f) => f.type === 'chat_chunk' && f.done).length, 1);
      const before = sub.frames.length;
      const viaB = await request(b.url, 'POST', `/v1/agents/${nft}/chat`, { token, body: { message: 'from http on B', conversation_id: subscribed.conversation_id } });
      assert.equal(viaB.status, 200, viaB.text);
      const wsDone = await sub.next((f) => f.type === 'chat_chunk' && f.done === true && /from http on B/.test(f.response), 10_000);
      const later = sub.frames.slice(before).filter((f) => f.type === 'chat_chunk' && !f.done).map((f) => f.content);
      assert.equal(later.join(''), wsDone.response);
      assert.equal(wsDone.response, viaB.body.response);
    } finally {
      sub.ws.close();
    }
  });

  test('a logout on node A closes the session\'s WebSocket on node B at once (panthers.revoke), and B refuses the token', async () => {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const token = await signInProcess(a.url, engines.pg.url, 'cluster-revoke-1');
    const ws = await openWs(b.url, token);
    const closedAt = new Promise<{ code: number; at: number }>((r) => ws.ws.once('close', (code) => r({ code, at: Date.now() })));
    const t0 = Date.now();
    const out = await request(a.url, 'POST', '/v1/auth/logout', { token });
    assert.equal(out.status, 200, out.text);
    const c = await closedAt;
    assert.equal(c.code, 4002);
    assert.ok(c.at - t0 < 2000, `closed after ${c.at - t0} ms`);
    assert.equal((await request(b.url, 'GET', '/v1/auth/session', { token })).status, 401);
  });

  test('a joining node takes about 1/N of the shards (only shards it hashes highest for), a few at a time', async () => {
    const before = await shardOwners(engines);
    const c = await cluster.add({ nodeId: 'node-c', leaseTtlMs: TTL_MS });
    const ids = cluster.nodes.map((n) => n.nodeId);
    const owners = await waitForBalance(engines, ids, 40_000);
    let moved = 0;
    for (let s = 0; s < SHARDS; s++) {
      if (owners.get(s) !== before.get(s)) {
        moved++;
        assert.equal(owners.get(s), 'node-c', `shard ${s} moved between old nodes`);
      }
    }
    const expected = [...Array(SHARDS).keys()].filter((s) => preferredOwner(s, ids) === 'node-c').length;
    assert.equal(moved, expected);
    assert.ok(moved > SHARDS / 3 / 2 && moved < (SHARDS / 3) * 1.5, `node-c took ${moved} of ${SHARDS}`);
    const h = await c.health();
    assert.equal(h.cluster.shards_owned, moved);
  });

  test('SIGTERM: the node drains and releases its shards, and the others take them within lease time + 2 s', async () => {
    const c = cluster.nodes.find((n) => n.nodeId === 'node-c')!;
    const t0 = Date.now();
    const code = await c.stop();
    assert.equal(code, 0, c.output().slice(-2000));
    const rest = cluster.nodes.filter((n) => n !== c).map((n) => n.nodeId);
    await waitFor(async () => {
      const owners = await shardOwners(engines);
      return owners.size === SHARDS && [...owners.values()].every((o) => rest.includes(o));
    }, TTL_MS + 2000, 50);
    const took = Date.now() - t0;
    assert.ok(took <= TTL_MS + 2000, `taken over in ${took} ms`);
    cluster.nodes.splice(cluster.nodes.indexOf(c), 1);
    await waitForBalance(engines, rest);
  });
});
