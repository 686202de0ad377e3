import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterUnavailable, TestCluster, sleep, type ClusterNode } from './helpers/cluster-harness.js';
import { ClientLedger, ClusterInvariants, getRetrying } from './helpers/cluster-ledger.js';
import { openSse, signInOver, type HttpSession } from './helpers/sign-in-http.js';
import { openWs } from './helpers/ws.js';
import { request } from './helpers/server.js';
import { newEvmWallet } from './helpers/wallets.js';
import { startFakeAkash, type FakeAkash } from './fakes/akash-api.js';
import { shardOf } from '../src/cluster/shards.js';

/**
 * Issue 17's fault tests: three real `panthers serve` nodes in cluster mode on one real
 * PostgreSQL and one nats-server, each node's PostgreSQL and NATS links through its own TCP
 * proxy (test/helpers/cluster-harness.ts). Clients call nodes that do NOT own the NFT (the
 * owner is read from the lease table), so every request is forwarded. Throughout, a monitor
 * checks PostgreSQL itself (at most one live deployment per NFT, epochs and progress never go
 * back) and a client ledger keeps every acknowledged write, read back from every node after
 * each fault. Lease TTL is short (PANTHERS_CLUSTER_LEASE_TTL_MS) so failover fits in seconds.
 *
 * PANTHERS_CLUSTER_FAULTS_LONG=1: more NFTs, streams and rounds (a few minutes).
 */
const LONG = process.env.PANTHERS_CLUSTER_FAULTS_LONG === '1';
// Once everything is reported and the loop is empty, leave with process.exit: the normal exit's
// handle cleanup (node::Environment::CleanupHandles, seen in gdb) spun forever on a handle this
// file leaves closing (proxies, child pipes, sockets of killed nodes) and node --test waited on it.
process.once('beforeExit', (code) => process.exit(process.exitCode ?? code));
// 3 s as in 17d's helper: at 1.5 s, leases lapsed under this shared machine's load (avg 25).
const TTL = Number(process.env.PANTHERS_CLUSTER_FAULTS_TTL_MS ?? 3000);
const FAILOVER_BOUND = TTL + 2000;
const DEPLOY_NFTS = LONG ? 60 : 30;
const STREAMS = LONG ? 100 : 50;
const CHAT_NFTS = LONG ? 40 : 25;
const ROUNDS = LONG ? 30 : 10;

let cluster: TestCluster | undefined;
let unavailable: string | undefined;
let akash: FakeAkash;
let invariants: ClusterInvariants;
const ledger = new ClientLedger();
const wallet = newEvmWallet();
const sessions = new Map<string, HttpSession>();
const deployNfts = Array.from({ length: DEPLOY_NFTS }, (_, i) => String(8100 + i));
const chatNfts = Array.from({ length: CHAT_NFTS }, (_, i) => String(8300 + i));
const akashNfts = ['8500', '8501', '8502', '8503'];
const failovers: { what: string; ms: number }[] = [];
let turnSeq = 0;

const token = (nft: string) => sessions.get(nft)!.access_token;

function ready(t: TestContext): TestCluster | undefined {
  if (!cluster) t.skip(unavailable ?? 'cluster did not start');
  return cluster;
}

/** The node a client should call for this NFT: not its owner, and not `avoid` when there is a choice. */
async function clientNode(c: TestCluster, nft: string, avoid?: ClusterNode): Promise<ClusterNode> {
  const owner = await c.ownerOf(nft);
  const pool = c.live().filter((n) => n.id !== owner && n !== avoid);
  return pool[shardOf(nft) % Math.max(1, pool.length)] ?? (await c.notOwner(nft));
}

/** The live node owning most of these NFTs (the best victim: most work moves). */
async function busiestOwner(c: TestCluster, nfts: string[]): Promise<ClusterNode> {
  const count = new Map<string, number>();
  for (const nft of nfts) {
    const o = await c.ownerOf(nft);
    if (o) count.set(o, (count.get(o) ?? 0) + 1);
  }
  const best = [...count].sort((a, b) => b[1] - a[1])[0];
  return c.byId(best![0])!;
}

/** Time from `t0` until every shard of these NFTs is held by a live node other than `gone`. */
async function failoverOf(c: TestCluster, nfts: string[], gone: ClusterNode, t0: number, what: string): Promise<number> {
  const shards = [...new Set(nfts.map((n) => shardOf(n)))];
  for (;;) {
    const rows = await c.sql<{ shard: number; owner: string | null; live: boolean }[]>`
      SELECT shard, owner, expires_at > now() AS live FROM shard_leases WHERE shard = ANY(${shards}::int[])`;
    const liveIds = new Set(c.live().map((n) => n.id));
    if (rows.length === shards.length && rows.every((r) => r.live && r.owner && r.owner !== gone.id && liveIds.has(r.owner))) break;
    if (performance.now() - t0 > FAILOVER_BOUND * 3) break;
    await sleep(25);
  }
  const ms = performance.now() - t0;
  failovers.push({ what, ms: Math.round(ms) });
  return ms;
}

/** A JSON chat turn through `node`, acknowledged into the ledger when it answers 200. */
async function turn(node: ClusterNode, nft: string, conversationId?: string): Promise<{ status: number; body: any; text: string }> {
  const user = `turn ${++turnSeq} for ${nft}`;
  const r = await request(node.url, 'POST', `/v1/agents/${nft}/chat`, { token: token(nft), body: { message: user, ...(conversationId ? { conversation_id: conversationId } : {}) } });
  if (r.status === 200) ledger.ackTurn({ nft, conversationId: r.body.conversation_id, user, reply: r.body.response, via: node.id });
  return r;
}

async function waitStatus(node: ClusterNode, nft: string, want: string, ms = 20_000): Promise<string> {
  const until = performance.now() + ms;
  let last = '';
  while (performance.now() < until) {
    const g = await getRetrying(node.url, `/v1/deployments/${nft}`, token(nft));
    last = g.status === 200 ? g.body.status : `HTTP ${g.status}`;
    if (last === want) return last;
    await sleep(100);
  }
  return last;
}

/** These NFTs' agents run (deployed through non-owners when they do not yet). */
async function ensureRunning(c: TestCluster, nfts: string[]): Promise<void> {
  await Promise.all(nfts.map(async (nft) => {
    const via = await clientNode(c, nft);
    const g = await getRetrying(via.url, `/v1/deployments/${nft}`, token(nft));
    if (g.status === 200 && g.body.status === 'running') return;
    const r = await request(via.url, 'POST', '/v1/deployments', { token: token(nft), body: { nft_token_id: nft, provider: 'local' } });
    assert.equal(r.status, 202, r.text);
    ledger.ackDeploy({ nft, deploymentId: r.body.deployment_id, via: via.id });
  }));
  for (const nft of nfts) {
    const st = await waitStatus(c.live()[0]!, nft, 'running');
    if (st !== 'running') {
      const g = await getRetrying(c.live()[0]!.url, `/v1/deployments/${nft}`, token(nft));
      assert.fail(`the agent of ${nft} does not run: ${st} ${g.text.slice(0, 400)}`);
    }
  }
}

/**
 * The agents run, deployed on a balanced cluster, which is balanced again after: a scenario that
 * stands alone (--test-name-pattern) does not test a deploy racing the start-up rebalancing.
 */
async function runningOnBalanced(c: TestCluster, nfts: string[]): Promise<void> {
  await c.balanced();
  await ensureRunning(c, nfts);
  await c.balanced();
}

/**
 * Failover as a client sees it: from `t0` (the kill) until a turn on `nft` through `via` (a
 * survivor) answers 200, retried every 50 ms (each attempt waits for its own answer).
 */
async function firstAnswerOf(via: ClusterNode, nft: string, t0: number, what: string): Promise<{ ms: number; tries: string[] }> {
  const tries: string[] = [];
  for (;;) {
    const s = performance.now() - t0;
    const r = await turn(via, nft).catch((e) => ({ status: 0, body: undefined, text: String(e) }));
    tries.push(`${Math.round(s)}-${Math.round(performance.now() - t0)} ms: ${r.status}${r.status === 200 ? '' : ` ${r.text.slice(0, 100)}`}`);
    if (r.status === 200 || performance.now() - t0 > FAILOVER_BOUND * 3) break;
    await sleep(50);
  }
  const ms = performance.now() - t0;
  failovers.push({ what, ms: Math.round(ms) });
  return { ms, tries };
}

async function verifyEverywhere(c: TestCluster): Promise<void> {
  const reads = await ledger.verify(c.live(), token, c.sql);
  assert.ok(reads > 0 || ledger.turns.length + ledger.deploys.length === 0);
  // Each scenario reports its own findings once (a lost write stays in the ledger and is read
  // again later, so it shows up again where it is still missing).
  assert.deepEqual(ledger.violations.splice(0), [], 'every acknowledged write reads back from every node');
  assert.deepEqual(invariants.violations.splice(0), [], 'the invariants held in PostgreSQL');
  assert.deepEqual(c.unexpectedExits(), [], 'no node exited by itself');
}

/**
 * Scenarios that still fail on this code, with what they found (the closing note of issue 17 has
 * the detail). They run in every `npm test` and print their findings, but as `todo` they do not
 * fail the suite: each entry is a known bug to fix, not a weakened assertion. Delete an entry when
 * its scenario passes; PANTHERS_CLUSTER_FAULTS_STRICT=1 makes them count again.
 */
const KNOWN_FAILING: Record<string, string> = process.env.PANTHERS_CLUSTER_FAULTS_STRICT === '1' ? {} : {
  // ('mid-chat', 'link-cut' and 'sigstop' left the list with 17i: 3 full-file runs in a row with
  // all seven scenarios passing, plus 4 runs in a row of the first two; 'handoff' with 17j: 6
  // runs in a row of the join + SIGTERM scenario, two of them in full-file runs; 'rounds' with
  // 17k: 3 runs in a row of that scenario; 'first-answer' with 17k: 3 runs in a row once 17j's
  // per-attempt resend was merged, first turns 3.6-4.3 s, where 4 of 10 rounds took 15.3 s before.)
  // 'sigstop' was back on the list after CI on a fresh clone saw 1,398 B reach the provider from
  // the paused node after SIGCONT. Two of three local runs did it again (932 B, 1,165 B); the
  // requests' first lines (now logged) showed what it was: 233 B GETs of deployment status, made
  // by the resumed node right after it legitimately claimed one of those shards back, inside the
  // 50 ms before the scenario's poll saw the claim (1,398 B is exactly six of them). The window
  // now ends at the lease's claimed_at (migration 11): 5 runs in a row after that, 0 B.
};
const known = (id: string) => (KNOWN_FAILING[id] ? { todo: `known failing: ${KNOWN_FAILING[id]}` } : {});

/** Set by the suite's after(): every load loop ends. */
let ended = false;

describe('cluster faults: three nodes on PostgreSQL + NATS', { timeout: LONG ? 900_000 : 480_000 }, () => {
  before(async () => {
    akash = await startFakeAkash({ bidsAfterPolls: 3, readyAfterPolls: 3 });
    const owners: Record<string, string> = {};
    for (const n of [...deployNfts, ...chatNfts, ...akashNfts]) owners[n] = wallet.address;
    try {
      cluster = await TestCluster.start(3, {
        leaseTtlMs: TTL, owners, providerPort: Number(new URL(akash.url).port),
        env: { PANTHERS_SCRIPTED_DELAY_MS: '25', PANTHERS_AKASH_API_KEY: 'test-akash-key', PANTHERS_AKASH_POLL_MS: '150', PANTHERS_AKASH_BID_TIMEOUT_MS: '30000' },
      });
    } catch (e) {
      if (!(e instanceof ClusterUnavailable)) throw e;
      unavailable = e.message;
      return;
    }
    invariants = new ClusterInvariants(cluster.sql);
    invariants.start(250);
    await cluster.settled();
    // Sessions made on different nodes: a token from one node must work on every node.
    const all = [...deployNfts, ...chatNfts, ...akashNfts];
    for (let i = 0; i < all.length; i += 8) {
      await Promise.all(all.slice(i, i + 8).map(async (nft, j) => {
        sessions.set(nft, await signInOver(cluster!.nodes[(i + j) % 3]!.url, wallet, nft));
      }));
    }
  });

  afterEach(async () => {
    // One scenario's failure must not leave the next with a dead or cut node.
    await cluster?.heal().catch((e) => console.log(`[cluster-faults] heal failed: ${(e as Error).message.slice(0, 300)}`));
    for (const e of cluster?.takeUnexpectedExits() ?? []) console.log(`[cluster-faults] UNEXPECTED EXIT ${e.slice(0, 3000)}`);
  });

  after(async () => {
    // A scenario that threw before setting its `stop` leaves its load loop calling the dead
    // cluster: end every loop, and never let a leftover handle keep this file's process alive
    // (node --test would wait for it forever). Results are all reported by then.
    ended = true;
    // Should the cleanup itself hang, the process still ends (60 s is well past a clean stop).
    setTimeout(() => process.exit(process.exitCode ?? 0), 60_000).unref();
    if (failovers.length) console.log(`[cluster-faults] failover times (bound ${FAILOVER_BOUND} ms): ${JSON.stringify(failovers)}`);
    if (invariants) {
      await invariants.stop();
      console.log(`[cluster-faults] invariant checks: ${invariants.checks}; not checkable: ${[...invariants.unavailable].join(' | ') || 'none'}`);
    }
    await cluster?.stop();
    await akash?.close();
    setTimeout(() => process.exit(process.exitCode ?? 0), 5000).unref();
  });

  test('a session made on one node works on every node; a forwarded request answers', async (t) => {
    const c = ready(t);
    if (!c) return;
    for (const nft of chatNfts.slice(0, 6)) {
      for (const node of c.live()) {
        const r = await request(node.url, 'GET', '/v1/auth/session', { token: token(nft) });
        assert.equal(r.status, 200, `${node.id}: ${r.text}`);
      }
    }
    const nft = chatNfts[0]!;
    const dep = await request((await clientNode(c, nft)).url, 'POST', '/v1/deployments', { token: token(nft), body: { nft_token_id: nft, provider: 'local' } });
    assert.equal(dep.status, 202, dep.text);
    ledger.ackDeploy({ nft, deploymentId: dep.body.deployment_id, via: 'setup' });
    assert.equal(await waitStatus(await clientNode(c, nft), nft, 'running'), 'running');
    const r = await turn(await clientNode(c, nft), nft);
    assert.equal(r.status, 200, r.text);
  });

  test(`kill -9 a node mid-deploy (${DEPLOY_NFTS} NFTs): every acknowledged deploy reaches running, failover within lease + 2 s`, async (t) => {
    const c = ready(t);
    if (!c) return;
    await c.balanced();
    const victim = await busiestOwner(c, deployNfts);
    const victimNfts: string[] = [];
    for (const nft of deployNfts) if ((await c.ownerOf(nft)) === victim.id) victimNfts.push(nft);
    // Deployment subscribers on a surviving node: frames produced on other nodes arrive, and never go back.
    const watcherNode = c.live().find((n) => n !== victim)!;
    const watchers = await Promise.all(deployNfts.slice(0, 10).map(async (nft) => {
      const w = await openWs(watcherNode.url, token(nft));
      const closed: unknown[] = [];
      w.ws.on('close', (code, reason) => closed.push(code, reason.toString()));
      w.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: nft }));
      // Followed once acknowledged: a deploy sent before that may reach running before the follow.
      try {
        await w.next((f) => f.type === 'subscribed' && f.nft_token_id === nft, 10_000);
      } catch (e) {
        const owner = await c.ownerOf(nft);
        throw new Error(`the subscribe of ${nft} on ${watcherNode.id} (owner ${owner}) went unanswered: ${(e as Error).message}; closed ${JSON.stringify(closed)}\n${watcherNode.output().slice(-3000)}`);
      }
      return { nft, w, closed };
    }));
    const acks = await Promise.all(deployNfts.map(async (nft) => {
      const via = await clientNode(c, nft, victim);
      const r = await request(via.url, 'POST', '/v1/deployments', { token: token(nft), body: { nft_token_id: nft, provider: 'local' } });
      if (r.status === 202) ledger.ackDeploy({ nft, deploymentId: r.body.deployment_id, via: via.id });
      return r;
    }));
    assert.deepEqual(acks.filter((r) => r.status !== 202).map((r) => `${r.status} ${r.text.slice(0, 120)}`), [], 'every deploy acknowledged');
    const t0 = performance.now();
    await victim.kill('SIGKILL');
    const ms = await failoverOf(c, victimNfts, victim, t0, 'kill -9 mid-deploy');
    assert.ok(ms <= FAILOVER_BOUND, `the victim's shards were claimed after ${Math.round(ms)} ms (bound ${FAILOVER_BOUND})`);
    for (const nft of deployNfts) {
      const st = await waitStatus(await clientNode(c, nft), nft, 'running', 20_000);
      assert.equal(st, 'running', `NFT ${nft} (owner was ${victimNfts.includes(nft) ? 'the victim' : 'a survivor'})`);
    }
    await sleep(300);
    for (const { nft, w, closed } of watchers) {
      for (const f of w.frames) ledger.frame(f, `WS on ${watcherNode.id} for ${nft}`);
      assert.ok(w.frames.some((f) => f.type === 'deployment_status' && f.status === 'running'), `the WS subscriber of ${nft} on ${watcherNode.id} saw running: ${JSON.stringify(w.frames.map((f) => f.status ?? f.type))}${closed.length ? `; closed ${JSON.stringify(closed)}` : ''}; owner was ${victimNfts.includes(nft) ? 'the victim' : 'a survivor'}`);
      w.ws.terminate();
    }
    await victim.start();
    await c.settled();
    await verifyEverywhere(c);
  });

  test(`kill -9 a node mid-chat (${STREAMS} streams): interrupted streams end incomplete, the others complete`, async (t) => {
    const c = ready(t);
    if (!c) return;
    // The chat agents run (deployed through non-owners).
    await ensureRunning(c, chatNfts);
    // A restart earlier hands shards back a batch at a time: a handoff is not what this tests.
    await c.balanced();
    const victim = await busiestOwner(c, chatNfts);
    const owned = new Map<string, string | undefined>();
    for (const nft of chatNfts) owned.set(nft, await c.ownerOf(nft));
    const streams = await Promise.all(Array.from({ length: STREAMS }, async (_, i) => {
      const nft = chatNfts[i % chatNfts.length]!;
      const via = await clientNode(c, nft, victim);
      // (no trailing space: the server stores the message trimmed)
      const message = `stream ${i} on ${nft} ${'please answer at length '.repeat(3).trim()}`;
      const s = await openSse(via.url, `/v1/agents/${nft}/chat`, token(nft), { message });
      return { nft, via, message, s, victimOwned: owned.get(nft) === victim.id };
    }));
    // Mid-stream: most streams have chunks, none is done yet.
    const until = performance.now() + 10_000;
    while (performance.now() < until && streams.filter((x) => x.s.events.length > 0).length < STREAMS * 0.8) await sleep(20);
    const t0 = performance.now();
    await victim.kill('SIGKILL');
    await Promise.all(streams.map((x) => Promise.race([x.s.ended, sleep(30_000)])));
    const problems: string[] = [];
    for (const x of streams) {
      const final = x.s.events.find((e) => typeof e === 'object' && e.done);
      const chunks = x.s.events.filter((e) => typeof e === 'object' && !e.done).map((e) => e.content).join('');
      if (!final) {
        problems.push(`stream on ${x.nft} via ${x.via.id} (owner ${x.victimOwned ? 'killed' : 'alive'}) ended without a final event`);
        ledger.streamsEnded.cut++;
      } else if (final.incomplete) {
        ledger.streamsEnded.incomplete++;
        if (!x.victimOwned) problems.push(`stream on ${x.nft} (owner alive) ended incomplete: ${JSON.stringify(final).slice(0, 200)}`);
      } else {
        ledger.streamsEnded.complete++;
        if (final.response !== chunks) problems.push(`stream on ${x.nft}: chunks differ from the final response`);
        ledger.ackTurn({ nft: x.nft, conversationId: final.conversation_id, user: x.message, reply: final.response, via: x.via.id });
      }
    }
    console.log(`[cluster-faults] mid-chat kill: ${JSON.stringify(ledger.streamsEnded)} (${streams.filter((x) => x.victimOwned).length} streams were owned by the victim)`);
    assert.deepEqual(problems, [], 'interrupted streams end incomplete; the others complete');
    assert.ok(streams.some((x) => x.victimOwned), 'some streams were owned by the killed node');
    // A new turn on each NFT the victim owned answers within the failover bound.
    const victimNfts = chatNfts.filter((n) => owned.get(n) === victim.id);
    const ms = await failoverOf(c, victimNfts, victim, t0, 'kill -9 mid-chat');
    assert.ok(ms <= FAILOVER_BOUND, `failover took ${Math.round(ms)} ms (bound ${FAILOVER_BOUND})`);
    for (const nft of victimNfts) {
      const r = await turn(await clientNode(c, nft), nft);
      assert.equal(r.status, 200, `a turn on ${nft} after the failover: ${r.text}`);
    }
    await victim.start();
    await c.settled();
    await verifyEverywhere(c);
  });

  test('SIGSTOP a node for twice the lease time: its writes are fenced and it makes no provider call after it resumes', known('sigstop'), async (t) => {
    const c = ready(t);
    if (!c) return;
    await c.balanced();
    const victim = await busiestOwner(c, akashNfts);
    const mine: string[] = [];
    for (const nft of akashNfts) if ((await c.ownerOf(nft)) === victim.id) mine.push(nft);
    const createdBefore = akash.counts.deploymentsCreated;
    for (const nft of mine) {
      const via = await clientNode(c, nft, victim);
      const r = await request(via.url, 'POST', '/v1/deployments', { token: token(nft), body: { nft_token_id: nft, provider: 'akash' } });
      assert.equal(r.status, 202, r.text);
      ledger.ackDeploy({ nft, deploymentId: r.body.deployment_id, via: via.id });
    }
    // Mid-deploy at the provider (waiting for bids), then frozen.
    await sleep(300);
    const epochBefore = new Map(mine.map((n) => [n, invariants.epoch(shardOf(n))]));
    victim.pause();
    const t0 = performance.now();
    const ms = await failoverOf(c, mine, victim, t0, 'SIGSTOP');
    assert.ok(ms <= FAILOVER_BOUND, `a paused node's shards were claimed after ${Math.round(ms)} ms`);
    await sleep(Math.max(0, 2 * TTL - (performance.now() - t0)));
    await invariants.checkOnce();
    for (const nft of mine) assert.ok((invariants.epoch(shardOf(nft)) ?? 0n) > (epochBefore.get(nft) ?? 0n), `shard of ${nft} was claimed at a higher epoch`);
    const resumedAt = Date.now();
    const rowsBefore = await c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM deployment_events WHERE nft_token_id = ANY(${mine}::text[])`.catch(() => [{ n: -1 }]);
    victim.resume();
    // It learns it lost the lease; its overdue timers must not reach the provider. The window
    // ends early if rebalancing legitimately hands one of those shards back to it.
    // It ends when the node claims one back (claimed_at, PostgreSQL's clock on this machine):
    // from then on its calls are made under its own new lease.
    let windowEnd = Date.now() + Math.max(1500, TTL);
    while (Date.now() < windowEnd) {
      const back = await c.sql<{ at: Date | null }[]>`SELECT min(claimed_at) AS at FROM shard_leases WHERE shard = ANY(${mine.map((n) => shardOf(n))}::int[]) AND owner = ${victim.id} AND expires_at > now()`;
      if (back[0]!.at) windowEnd = Math.min(windowEnd, new Date(back[0]!.at).getTime());
      else await sleep(50);
    }
    const late = victim.providerProxy!.sends.filter((x) => x.at >= resumedAt && x.at < windowEnd);
    const providerBytes = late.reduce((a, x) => a + x.bytes, 0);
    if (late.length) console.log(`[cluster-faults] SIGSTOP: sent after resume: ${late.map((x) => `+${x.at - resumedAt} ms ${x.bytes} B ${JSON.stringify(x.head)}`).join('; ')}`);
    const windowMs = windowEnd - resumedAt;
    for (const nft of mine) assert.equal(await waitStatus(await clientNode(c, nft), nft, 'running', 30_000), 'running', `NFT ${nft} deployed by the new owner`);
    const metrics = await fetch(victim.url + '/metrics').then((r) => r.text()).catch(() => '');
    const fencedLines = metrics.split('\n').filter((l) => /fenc/i.test(l) && !l.startsWith('#'));
    console.log(`[cluster-faults] SIGSTOP: failover ${Math.round(ms)} ms; provider bytes from the paused node in the ${windowMs} ms after resume ${providerBytes}; events before resume ${rowsBefore[0]!.n}; victim fencing metrics: ${fencedLines.join('; ') || 'none exposed'}`);
    assert.equal(providerBytes, 0, 'the node that lost its lease sent nothing to the provider after it resumed');
    assert.equal(akash.counts.deploymentsCreated - createdBefore, mine.length, 'one provider deployment per NFT (none created twice)');
    await c.settled();
    await verifyEverywhere(c);
  });

  test("cut a node's PostgreSQL link, then its NATS link: its NFTs are served by the others within lease + 2 s", async (t) => {
    const c = ready(t);
    if (!c) return;
    for (const link of ['pg', 'nats'] as const) {
      await c.balanced();
      const victim = await busiestOwner(c, chatNfts);
      const theirs: string[] = [];
      for (const nft of chatNfts) if ((await c.ownerOf(nft)) === victim.id) theirs.push(nft);
      const proxy = link === 'pg' ? victim.pgProxy : victim.natsProxy;
      const t0 = performance.now();
      proxy.cut('refuse');
      const ms = await failoverOf(c, theirs, victim, t0, `${link} link cut`);
      const served: string[] = [];
      for (const nft of theirs) {
        const via = c.live().find((n) => n !== victim)!;
        const until = performance.now() + FAILOVER_BOUND;
        let r = await turn(via, nft);
        while (r.status !== 200 && performance.now() < until) {
          await sleep(100);
          r = await turn(via, nft);
        }
        if (r.status !== 200) served.push(`${nft}: ${r.status} ${r.text.slice(0, 160)}`);
      }
      await proxy.restore();
      assert.ok(ms <= FAILOVER_BOUND, `${link} cut: the node's shards were claimed by others after ${Math.round(ms)} ms (bound ${FAILOVER_BOUND})`);
      assert.deepEqual(served, [], `${link} cut: the cut node's NFTs answer through the others`);
      await c.settled();
      await verifyEverywhere(c);
    }
  });

  test('a node joins, another gets SIGTERM: no client error during the planned handoff', async (t) => {
    const c = ready(t);
    if (!c) return;
    const nfts = chatNfts.slice(0, 12);
    // Its agents run before the load starts (a deploy racing a shard move is what the kill and
    // link-cut scenarios test, not this one).
    await runningOnBalanced(c, nfts);
    // The node that owns most of the load's NFTs leaves: most turns are in flight on it.
    const leaving = await busiestOwner(c, nfts);
    const stayers = () => c.live().filter((n) => n !== leaving);
    // Who held each shard, polled from the lease table: which node each turn met.
    const owners = new Map<number, string | null>();
    let polling = true;
    const poll = (async () => {
      while (polling && !ended) {
        const rows = await c.sql<{ shard: number; owner: string | null; live: boolean }[]>`SELECT shard, owner, expires_at > now() AS live FROM shard_leases`.catch(() => []);
        for (const r of rows) owners.set(r.shard, r.live ? r.owner : null);
        await sleep(25);
      }
    })();
    await sleep(100);
    const turns: { nft: string; via: string; t0: number; t1: number; owner0: string | null | undefined; status: number; text: string }[] = [];
    let sigterm = Infinity;
    let exitedAt = Infinity;
    let stop = false;
    const t00 = performance.now();
    const load = Promise.all(nfts.map(async (nft) => {
      let conv: string | undefined;
      while (!stop && !ended) {
        // A client behind a balancer that checks /health: the leaving node answers 503 from
        // SIGTERM on, so new requests go to the others (requests to it before that are forwarded).
        const pool = stayers();
        const via = pool[turnSeq % pool.length]!;
        const t0 = performance.now();
        const owner0 = owners.get(shardOf(nft));
        const r = await turn(via, nft, conv).catch((e) => ({ status: 0, body: undefined, text: String(e) }));
        turns.push({ nft, via: via.id, t0, t1: performance.now(), owner0, status: r.status, text: r.text });
        if (r.status === 200) conv = r.body.conversation_id;
        // A turn that fails without I/O (no live node to call) resolves in a microtask: without
        // a real wait this loop would starve every timer, after() included, and spin forever.
        else await sleep(50);
      }
    }));
    let joined: ClusterNode;
    let exit: { code: number | null };
    try {
      await sleep(500);
      joined = await c.addNode();
      // The join's rebalancing is under way (shards handed to the new node a batch at a time)
      // when the other node gets SIGTERM: both planned moves overlap under the load.
      const joinedAt = performance.now();
      while (performance.now() - joinedAt < 10_000) {
        const held = await c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM shard_leases WHERE owner = ${joined.id} AND expires_at > now()`;
        if (held[0]!.n > 0) break;
        await sleep(25);
      }
      leaving.retired = true;
      sigterm = performance.now();
      exit = await leaving.terminate();
      exitedAt = performance.now();
      // The load goes on through the rebalancing that follows the leave, to its end.
      await c.balanced();
      await sleep(500);
    } finally {
      // However the scenario ends, its load loop ends with it.
      stop = true;
      await load;
      polling = false;
      await poll;
    }
    const at = (ms: number) => `${Math.round(ms - sigterm)} ms`;
    const errors = turns.filter((x) => x.status !== 200).map((x) => `${x.nft} via ${x.via} (owner at start ${x.owner0}), sent at ${at(x.t0)} from SIGTERM, answered after ${Math.round(x.t1 - x.t0)} ms: ${x.status} ${x.text.slice(0, 200)}`);
    const ok = turns.filter((x) => x.status === 200);
    // In flight on the leaving node when it got SIGTERM: finished there (or retried elsewhere).
    const inFlight = ok.filter((x) => x.owner0 === leaving.id && x.t0 < sigterm && x.t1 > sigterm);
    // Sent while the leaving node drained and released: answered by the next owners.
    const duringHandoff = ok.filter((x) => x.t0 >= sigterm && x.t0 < exitedAt && (x.owner0 === leaving.id || x.owner0 === null));
    const slowest = Math.max(0, ...ok.filter((x) => x.t0 >= sigterm - 2000).map((x) => x.t1 - x.t0));
    for (const x of ok.filter((y) => y.t1 - y.t0 > 2000)) console.log(`[cluster-faults] slow turn: ${x.nft} via ${x.via} (owner at start ${x.owner0}) sent at ${at(x.t0)}, ${Math.round(x.t1 - x.t0)} ms`);
    console.log(`[cluster-faults] join ${joined.id} + SIGTERM ${leaving.id} (exit after ${Math.round(exitedAt - sigterm)} ms): ${ok.length} turns answered in ${Math.round((performance.now() - t00) / 1000)} s, ${errors.length} errors; ${inFlight.length} in flight on it at SIGTERM, ${duringHandoff.length} sent to its NFTs during the handoff; slowest turn around the handoff ${Math.round(slowest)} ms`);
    assert.equal(exit.code, 0, 'SIGTERM ends the node cleanly');
    assert.deepEqual(errors, [], 'no client error during a planned handoff');
    assert.ok(inFlight.length > 0, 'turns were in flight on the leaving node when it got SIGTERM (else this tested no drain)');
    assert.ok(duringHandoff.length > 0, "turns on the leaving node's NFTs were sent during its handoff and answered");
    await verifyEverywhere(c);
  });

  test(`${ROUNDS} kill -9 / restart rounds under load`, known('rounds'), async (t) => {
    const c = ready(t);
    if (!c) return;
    const nfts = chatNfts.slice(0, 10);
    await runningOnBalanced(c, chatNfts);
    let stop = false;
    const slowAnswers: string[] = [];
    let answered = 0;
    const load = Promise.all(nfts.map(async (nft) => {
      let conv: string | undefined;
      while (!stop && !ended) {
        const pool = c.live();
        const r = await turn(pool[turnSeq % pool.length]!, nft, conv).catch(() => undefined);
        if (r?.status === 200) {
          answered++;
          conv = r.body.conversation_id;
        } else await sleep(50);
      }
    }));
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const live = c.live();
        const victim = live[round % live.length]!;
        const theirs: string[] = [];
        for (const nft of chatNfts) if ((await c.ownerOf(nft)) === victim.id) theirs.push(nft);
        // The probe: a chat agent the victim owned, asked through a survivor from the kill on.
        const probe = nfts.find((n) => theirs.includes(n)) ?? theirs[0];
        const survivors = live.filter((n) => n !== victim);
        const t0 = performance.now();
        // The probe starts with the signal, not once the process is gone: a client does not wait for that.
        const killed = victim.kill('SIGKILL');
        if (theirs.length) {
          const [ms, first] = await Promise.all([
            failoverOf(c, theirs, victim, t0, `round ${round + 1}`),
            probe ? firstAnswerOf(survivors[round % survivors.length]!, probe, t0, `round ${round + 1} first turn`) : undefined,
          ]);
          assert.ok(ms <= FAILOVER_BOUND, `round ${round + 1}: failover ${Math.round(ms)} ms`);
          if (first && first.ms > FAILOVER_BOUND) slowAnswers.push(`round ${round + 1}: first answer on ${probe} after ${Math.round(first.ms)} ms: ${first.tries.join('; ')}`);
        }
        await killed;
        await victim.start();
        await c.settled();
      }
    } finally {
      stop = true;
      await load;
    }
    console.log(`[cluster-faults] ${ROUNDS} rounds: ${answered} turns answered, ${ledger.turns.length} acknowledged writes to read back; first turns through a survivor later than ${FAILOVER_BOUND} ms: ${slowAnswers.length ? slowAnswers.join(' | ') : 'none'}`);
    assert.ok(answered > 0);
    await verifyEverywhere(c);
  });

  test('kill -9: the first turn through a survivor answers within lease + 2 s of the signal', known('first-answer'), async (t) => {
    const c = ready(t);
    if (!c) return;
    const nfts = chatNfts.slice(0, 10);
    await c.balanced();
    await ensureRunning(c, nfts);
    const slow: string[] = [];
    for (let round = 0; round < 3; round++) {
      await c.balanced();
      const live = c.live();
      const victim = await busiestOwner(c, nfts);
      const probe = (await Promise.all(nfts.map(async (n) => ((await c.ownerOf(n)) === victim.id ? n : undefined)))).find((n) => n);
      if (!probe) continue;
      const survivors = live.filter((n) => n !== victim);
      // The agent answers through that survivor before the kill.
      const warm = await turn(survivors[round % survivors.length]!, probe);
      assert.equal(warm.status, 200, warm.text);
      const t0 = performance.now();
      // From the signal on, as a client sees it: it does not wait for the process to be gone.
      const killed = victim.kill('SIGKILL');
      const first = await firstAnswerOf(survivors[round % survivors.length]!, probe, t0, `first turn after kill -9 (${round + 1})`);
      if (first.ms > FAILOVER_BOUND) slow.push(`kill ${round + 1} (${victim.id}): first answer on ${probe} after ${Math.round(first.ms)} ms: ${first.tries.join('; ')}`);
      await killed;
      await victim.start();
      await c.settled();
    }
    assert.deepEqual(slow, [], `the first turn through a survivor answers within ${FAILOVER_BOUND} ms of kill -9`);
    await verifyEverywhere(c);
  });
});
