import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNats, type Nats } from './helpers/engines.js';
import { RateLimiter } from '../src/guards/rate-limiter.js';
import { RateSync } from '../src/cluster/rate-sync.js';
import { NatsInvalidations, LocalInvalidations } from '../src/cluster/invalidations.js';
import { NatsRevocations } from '../src/cluster/revocations.js';
import { DEFAULT_RATE_LIMITS } from '../src/config.js';

/**
 * What cluster nodes exchange over a real nats-server besides asks and frames: rate-limit counts
 * (synced every interval; the bound in docs/cluster.md), cache invalidations and revocations.
 */
let nats: Nats;
const conns: NatsConnection[] = [];
const nc = async () => {
  const c = await connect({ servers: nats.url, noEcho: true });
  conns.push(c);
  return c;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  nats = await startNats();
});
after(async () => {
  for (const c of conns) await c.close().catch(() => {});
  nats?.stop();
});

describe('rate limits across nodes', () => {
  test('counts are local and synced: after one interval a node refuses a key that others used up; before it, the overshoot stays within N x limit', async () => {
    const limits = { ...DEFAULT_RATE_LIMITS, auth: 5 };
    const nodes = await Promise.all([0, 1, 2].map(async () => {
      const limiter = new RateLimiter(limits);
      return { limiter, sync: new RateSync(await nc(), limiter, 50) };
    }));
    try {
      // A burst inside one sync interval: each node admits up to the limit on its own count.
      let admitted = 0;
      for (let i = 0; i < 30; i++) if (nodes[i % 3]!.limiter.take('auth', 'ip:1').ok) admitted++;
      assert.ok(admitted >= limits.auth && admitted <= 3 * limits.auth, `admitted ${admitted}`);
      await sleep(300);
      // Synced: every node now sees the others' counts and refuses.
      for (const n of nodes) assert.equal(n.limiter.take('auth', 'ip:1').ok, false);
      // A slow client spread over the nodes is held to the limit (plus what one interval lets through).
      let slow = 0;
      for (let i = 0; i < 12; i++) {
        if (nodes[i % 3]!.limiter.take('auth', 'ip:2').ok) slow++;
        await sleep(120);
      }
      assert.ok(slow >= limits.auth && slow <= limits.auth + 1, `admitted ${slow} of 12 at one request per 120 ms`);
      assert.equal(nodes[0]!.limiter.peek('auth', 'ip:2').remaining, 0);
    } finally {
      for (const n of nodes) n.sync.close();
    }
  });

  test('without sync the limiter is unchanged (one process)', () => {
    const l = new RateLimiter({ ...DEFAULT_RATE_LIMITS, auth: 2 });
    assert.equal(l.take('auth', 'k').ok, true);
    assert.equal(l.take('auth', 'k').ok, true);
    assert.equal(l.take('auth', 'k').ok, false);
    assert.equal(l.takeDelta(), undefined);
  });
});

describe('invalidations and revocations', () => {
  test('invalidate(what, key) runs the other nodes\' handlers for that key (batched per turn), not the sender\'s', async () => {
    const a = new NatsInvalidations(await nc());
    const b = new NatsInvalidations(await nc());
    const gotA: string[] = [];
    const gotB: string[] = [];
    a.onInvalidate('deployment', (k) => gotA.push(k));
    b.onInvalidate('deployment', (k) => gotB.push(k));
    b.onInvalidate('other', () => gotB.push('wrong'));
    await sleep(50);
    a.invalidate('deployment', '7');
    a.invalidate('deployment', '8');
    a.invalidate('deployment', '7');
    const until = Date.now() + 2000;
    while (gotB.length < 2 && Date.now() < until) await sleep(10);
    assert.deepEqual(gotB.sort(), ['7', '8']);
    assert.deepEqual(gotA, []);
    assert.equal(a.stats.sent, 2, 'one message for the turn, each key once');
    a.close();
    b.close();
    const local = new LocalInvalidations();
    local.onInvalidate('deployment', () => assert.fail('one process: nobody else to tell'));
    local.invalidate('deployment', '1');
  });

  test('a revocation broadcast reaches every other node', async () => {
    const a = new NatsRevocations(await nc());
    const b = new NatsRevocations(await nc());
    const c = new NatsRevocations(await nc());
    const got: string[] = [];
    b.onRevoked((sid, why) => got.push(`b:${sid}:${why}`));
    c.onRevoked((sid, why) => got.push(`c:${sid}:${why}`));
    a.onRevoked(() => got.push('a: its own'));
    await sleep(50);
    a.broadcast('s1', 'refresh_reuse');
    const until = Date.now() + 2000;
    while (got.length < 2 && Date.now() < until) await sleep(10);
    assert.deepEqual(got.sort(), ['b:s1:refresh_reuse', 'c:s1:refresh_reuse']);
    a.close();
    b.close();
    c.close();
  });
});

describe('the cross-node publisher', () => {
  test('deployment frames reach every node (and drop its cached view); chat frames only nodes whose sockets follow the conversation', async () => {
    const { ClusterPublisher } = await import('../src/cluster/cluster-publisher.js');
    const local = () => {
      const got: string[] = [];
      return { got, publish: (t: string, f: string) => void got.push(`${t} ${f}`), subscribers: () => 0, subscriptions: 0 };
    };
    const la = local();
    const lb = local();
    const dropped: string[] = [];
    const a = new ClusterPublisher(await nc(), la, () => {});
    const b = new ClusterPublisher(await nc(), lb, (nft) => dropped.push(nft));
    await sleep(50);
    a.publish('deployment:9', '{"type":"deployment_status","n":1}');
    a.publish('deployment:9', '{"type":"deployment_status","n":2}');
    a.publish('chat:c1', '{"type":"chat_chunk","n":1}');
    const until = Date.now() + 2000;
    while (lb.got.length < 2 && Date.now() < until) await sleep(10);
    await sleep(100);
    assert.deepEqual(lb.got, ['deployment:9 {"type":"deployment_status","n":1}', 'deployment:9 {"type":"deployment_status","n":2}'], 'in order, as sent; no chat frames without a follower');
    assert.deepEqual(dropped, ['9']);
    assert.equal(la.got.length, 3, 'the producer publishes to its own sockets at once');
    b.follow('chat:c1');
    b.follow('deployment:9'); // followed for life already: not a second subscription
    await sleep(50);
    a.publish('chat:c1', '{"type":"chat_chunk","n":2}');
    a.publish('chat:c1', '{"type":"chat_chunk","n":3}');
    a.publish('deployment:9', '{"type":"deployment_status","n":3}');
    const until2 = Date.now() + 2000;
    while (lb.got.length < 5 && Date.now() < until2) await sleep(10);
    await sleep(100);
    assert.deepEqual(lb.got.slice(2).sort(), ['chat:c1 {"type":"chat_chunk","n":2}', 'chat:c1 {"type":"chat_chunk","n":3}', 'deployment:9 {"type":"deployment_status","n":3}'].sort());
    assert.equal(a.relay.stats.messages, 4, 'one NATS message per topic per turn');
    b.unfollow('chat:c1');
    b.unfollow('deployment:9');
    await sleep(50);
    a.publish('chat:c1', '{"type":"chat_chunk","n":4}');
    await sleep(200);
    assert.equal(lb.got.length, 5, 'no chat frames once no socket follows');
    a.close();
    b.close();
  });
});
