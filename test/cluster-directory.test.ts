import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ActorRegistry } from '../actors/registry.js';
import { agentActorKind } from '../actors/agent-actor.js';
import type { ActorKind } from '../src/contracts/actor-kind.js';
import { AGENT_ACTOR, type AgentMsg, type ClearHandle, type TurnHandle, type TurnResult } from '../src/contracts/agent-messages.js';
import { ClusterDirectory } from '../src/cluster/cluster-directory.js';
import { Forwarder } from '../src/cluster/forwarder.js';
import { shardOf } from '../src/cluster/shards.js';
import { ApiError } from '../src/errors.js';
import { openDatabase, type Db } from '../src/db/database.js';
import { SqliteConversationsStore } from '../src/agents/conversations-store.sqlite.js';
import type { ModelBackend, ModelEvent, ModelRequest } from '../src/models/model-backend.js';
import { chatTopic } from '../src/agents/chat-frames.js';
import { startNats, type Nats } from './helpers/engines.js';
import { tempDir, sleep, waitFor } from './helpers/server.js';

/**
 * The cluster directory against a real nats-server: two ActorRegistry instances in this process
 * stand for two nodes, each with its own NATS connection and SQLite file; a lease view is a set of
 * shards per node (the lease loop is 17d's, tested in cluster-parts.test.ts).
 */
const log = pino({ level: 'silent' });
let nats: Nats;
const conns: NatsConnection[] = [];
const nodes: Node[] = [];

/** The model: deltas from the message's words; "stall" stops after two chunks until aborted. */
const WORDS = Array.from({ length: 40 }, (_, i) => `w${i} `);
/** model calls, by last message */
const calls = new Map<string, number>();
const model: ModelBackend = {
  name: 'scripted',
  defaultModel: 'test',
  async *stream(req: ModelRequest): AsyncIterable<ModelEvent> {
    calls.set(req.messages[req.messages.length - 1]!.content, (calls.get(req.messages[req.messages.length - 1]!.content) ?? 0) + 1);
    const last = req.messages[req.messages.length - 1]!.content;
    const words = last === 'stall' ? WORDS.slice(0, 2) : WORDS;
    if (last === 'first-slow') await sleep(500); // a model slow to its first token
    for (const w of words) {
      if (req.signal.aborted) return;
      await new Promise((r) => setImmediate(r));
      yield { type: 'delta', content: w };
    }
    if (last === 'stall' || last === 'slow') {
      // until aborted: a stuck model (or, for "slow", a long reply the client gives up on)
      await new Promise<void>((r) => (req.signal.aborted ? r() : req.signal.addEventListener('abort', () => r(), { once: true })));
      return;
    }
    yield { type: 'usage', promptTokens: 7, completionTokens: words.length };
  },
};

/** A probe kind: plain data in, plain data or the spec's errors out. */
const probeKind: ActorKind<{ type: string; ms?: number }, unknown> = {
  name: 'probe',
  create(key) {
    let n = 0;
    return {
      async receive(msg) {
        switch (msg.type) {
          case 'echo':
            return { key, n: ++n, nested: { list: [1, 'two', null], ok: true } };
          case 'fail':
            throw new ApiError('CONFLICT', 'The probe is in the wrong state', { field: 'state', reason: 'busy' });
          case 'crash':
            throw new Error('boom');
          case 'slow':
            await sleep(msg.ms ?? 100);
            return 'late';
          case 'slow-echo':
            // Work that takes a while and counts: a second run would show as a higher n.
            await sleep(msg.ms ?? 100);
            return { key, n: ++n };
          default:
            throw new ApiError('INVALID_FIELD', 'unknown', { field: 'type' });
        }
      },
    };
  },
};

interface Node {
  name: string;
  forwarder: Forwarder;
  owned: Set<number>;
  registry: ActorRegistry;
  directory: ClusterDirectory;
  nc: NatsConnection;
  db: Db;
  /** frames this node's WS publisher was given, per topic */
  frames: Map<string, string[]>;
}

/** `db`: a file another node also uses (stands for the shared PostgreSQL of two owners in turn). */
async function node(name: string, opts: { silenceMs?: number; heartbeatMs?: number; attemptMs?: number; db?: Db } = {}): Promise<Node> {
  const nc = await connect({ servers: nats.url, noEcho: true });
  conns.push(nc);
  const db = opts.db ?? openDatabase(tempDir());
  const frames = new Map<string, string[]>();
  const publish = (topic: string, frame: string) => {
    let l = frames.get(topic);
    if (!l) frames.set(topic, (l = []));
    l.push(frame);
  };
  const registry = new ActorRegistry({ log, idleMs: 60_000 });
  registry.register(probeKind);
  registry.register(agentActorKind({
    repo: new SqliteConversationsStore(db, log),
    // A follower on every topic: the chat path publishes a chunk only to a followed topic.
    publisher: { publish, subscribers: () => 1, subscriptions: 0 },
    log,
    now: Date.now,
    character: (nft) => ({ name: `agent ${nft}`, system_prompt: 'be brief', model: 'test', capabilities: ['chat'] }),
    model: () => ({ backend: model, model: 'test' }),
    concurrency: 8,
    historyTokenBudget: 1000,
  }));
  const owned = new Set<number>();
  const forwarder = new Forwarder(nc, 'panthers', { attemptMs: opts.attemptMs });
  const directory = new ClusterDirectory({
    local: registry, nc, log, localPublish: publish,
    leases: { ownedEpoch: (s) => (owned.has(s) ? 1 : undefined) },
    shardedKinds: [AGENT_ACTOR, 'probe'],
    forwarder,
    heartbeatMs: opts.heartbeatMs ?? 200,
    silenceMs: opts.silenceMs ?? 1000,
  });
  const n: Node = { name, forwarder, owned, registry, directory, nc, db, frames };
  nodes.push(n);
  return n;
}

/** Node `n` holds the shard of `key` and serves it. */
function own(n: Node, key: string): number {
  const s = shardOf(key);
  n.owned.add(s);
  n.directory.serveShard(s);
  return s;
}

function disown(n: Node, key: string): void {
  const s = shardOf(key);
  n.owned.delete(s);
  n.directory.unserveShard(s);
}

/** An NFT id on a shard nobody uses yet in this file. */
const usedShards = new Set<number>();
function freshNft(): string {
  for (let i = 1; ; i++) {
    const nft = String(1000 + Math.floor(Math.random() * 1e6));
    if (!usedShards.has(shardOf(nft))) {
      usedShards.add(shardOf(nft));
      return nft;
    }
    if (i > 10_000) throw new Error('no free shard');
  }
}

interface ErrorShape { code: string; status: number; message: string; details: Record<string, unknown> }
function errorShape(e: unknown): ErrorShape {
  assert.ok(e instanceof ApiError, `an ApiError, got ${String(e)}`);
  return { code: e.code, status: e.status, message: e.message, details: e.details };
}

async function turn(n: Node, nft: string, message: string, extra: Partial<Extract<AgentMsg, { type: 'turn' }>> = {}) {
  const chunks: string[] = [];
  const opened: string[] = [];
  const handle = await n.directory.ask<TurnHandle>(AGENT_ACTOR, nft, {
    type: 'turn', wallet: '0xabc', message, listener: { onChunk: (c) => void chunks.push(c) }, opened: (id) => void opened.push(id), ...extra,
  } satisfies AgentMsg);
  return { handle, chunks, opened };
}

/** A TurnResult without what differs between two runs (ids and times). */
function comparable(r: TurnResult) {
  const { conversation_id: _c, timestamp: _t, ...rest } = r;
  return { ...rest, error: r.error && errorShape(r.error) };
}

before(async () => {
  nats = await startNats();
});

after(async () => {
  for (const n of nodes) {
    n.directory.close();
    n.registry.stopAll();
    n.db.close();
  }
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  nats?.stop();
});

describe('cluster directory: asks', () => {
  test('an ask for an NFT owned elsewhere is forwarded and answers exactly what a local ask answers', async () => {
    const a = await node('a');
    const b = await node('b');
    const nft = freshNft();
    own(b, nft);
    const forwarded = await a.directory.ask('probe', nft, { type: 'echo' });
    const local = await b.directory.ask('probe', nft, { type: 'echo' });
    assert.deepEqual(forwarded, { key: nft, n: 1, nested: { list: [1, 'two', null], ok: true } });
    assert.deepEqual(local, { key: nft, n: 2, nested: { list: [1, 'two', null], ok: true } }, 'the same single actor answered both');
    assert.equal(a.registry.isLive('probe', nft), false, 'no second activation on the asking node');
    assert.equal(a.directory.stats.forwarded, 1);
    assert.equal(b.directory.stats.local, 1, 'the owner ran its own ask locally');
    // The agent's info crosses as plain data too.
    assert.deepEqual(await a.directory.ask(AGENT_ACTOR, nft, { type: 'info' } satisfies AgentMsg), await b.directory.ask(AGENT_ACTOR, nft, { type: 'info' } satisfies AgentMsg));
  });

  test('errors keep their code, status, message and details; a crash is INTERNAL_ERROR on both paths', async () => {
    const a = await node('a');
    const b = await node('b');
    const nft = freshNft();
    own(b, nft);
    for (const type of ['fail', 'crash', 'bogus']) {
      const remote = await a.directory.ask('probe', nft, { type }).then(() => assert.fail('resolved'), errorShape);
      const local = await b.directory.ask('probe', nft, { type }).then(() => assert.fail('resolved'), errorShape);
      assert.deepEqual(remote, local, type);
    }
    assert.deepEqual(await a.directory.ask('probe', nft, { type: 'fail' }).then(() => assert.fail('resolved'), errorShape), {
      code: 'CONFLICT', status: 409, message: 'The probe is in the wrong state', details: { field: 'state', reason: 'busy' },
    });
    // The owner's deadline is the asker's: its TIMEOUT comes back, not a transport error.
    const slow = await a.directory.ask('probe', nft, { type: 'slow', ms: 1500 }, 300).then(() => assert.fail('resolved'), errorShape);
    assert.equal(slow.code, 'TIMEOUT');
    assert.equal(slow.status, 504);
  });

  test('kinds not keyed by NFT (sessions) and NFTs this node owns are asked locally, without NATS', async () => {
    const a = await node('a');
    const nft = freshNft();
    own(a, nft);
    const before = a.directory.stats.forwarded;
    const ask = await a.directory.ask<{ n: number }>('probe', nft, { type: 'echo' });
    assert.equal(ask.n, 1);
    assert.equal(a.directory.shardFor('session', 'some-session-id'), undefined, 'sessions run on any node');
    assert.equal(a.directory.stats.forwarded, before);
    // A local turn keeps its callbacks: the listener is the caller's own object.
    const t = await turn(a, nft, 'hi');
    const r = await t.handle.done;
    assert.equal(t.chunks.join(''), WORDS.join(''));
    assert.equal(r.incomplete, false);
    assert.equal(a.directory.stats.forwarded, before);
  });

  test('a lease moving mid-ask is latency, not an error: nobody owns it, then a new owner answers', async () => {
    const a = await node('a');
    const b = await node('b');
    const c = await node('c');
    const nft = freshNft();
    own(b, nft);
    assert.equal((await a.directory.ask<{ n: number }>('probe', nft, { type: 'echo' })).n, 1);
    // b loses the lease (its subject answers NOT_OWNER until its lease loop unserves it, as
    // ClusterNode's trust watchdog does within a quarter of a renewal period)...
    b.owned.delete(shardOf(nft));
    setTimeout(() => b.directory.unserveShard(shardOf(nft)), 100);
    const started = performance.now();
    const pending = a.directory.ask<{ key: string }>('probe', nft, { type: 'echo' }, 5000);
    await sleep(300);
    // ...and c claims it 300 ms later.
    own(c, nft);
    const r = await pending;
    const took = performance.now() - started;
    assert.equal(r.key, nft);
    assert.ok(took >= 250 && took < 2000, `answered after the handoff (${Math.round(took)} ms)`);
    assert.ok(b.directory.stats.notOwner >= 1, 'the old owner said NOT_OWNER rather than answering');
    disown(b, nft);
  });

  test('the lease coming to the asking node mid-ask runs it here', async () => {
    const a = await node('a');
    const nft = freshNft();
    const pending = a.directory.ask<{ n: number }>('probe', nft, { type: 'echo' }, 5000);
    await sleep(200);
    own(a, nft);
    assert.equal((await pending).n, 1);
    assert.equal(a.directory.stats.abandoned, 1);
    assert.equal(a.registry.isLive('probe', nft), true);
  });

  test('a tell to an NFT owned elsewhere reaches the one actor on its owner', async () => {
    const a = await node('a');
    const b = await node('b');
    const nft = freshNft();
    own(b, nft);
    a.directory.tell('probe', nft, { type: 'echo' });
    await waitFor(() => b.registry.isLive('probe', nft) || undefined);
    assert.equal((await b.directory.ask<{ n: number }>('probe', nft, { type: 'echo' })).n, 2, 'the told message was handled first');
    assert.equal(a.registry.isLive('probe', nft), false);
  });

  test('a malformed forwarded message is refused with INVALID_REQUEST, not run', async () => {
    const b = await node('b');
    const nft = freshNft();
    const shard = own(b, nft);
    const asker = await connect({ servers: nats.url });
    conns.push(asker);
    const enc = new TextEncoder();
    let other = `${nft}x`;
    while (shardOf(other) === shard) other += 'x';
    for (const body of [{ k: 'probe', key: other, m: { type: 'echo' } }, { k: 'session', key: nft, m: { type: 'get' } }, { k: AGENT_ACTOR, key: nft, turn: { turn: 'a.>', msg: {} } }]) {
      const m = await asker.request(`panthers.shard.${shard}`, enc.encode(JSON.stringify(body)), { timeout: 2000 });
      const reply = JSON.parse(new TextDecoder().decode(m.data)) as { error?: { code: string } };
      assert.equal(reply.error?.code, 'INVALID_REQUEST', JSON.stringify(body));
    }
    assert.equal(b.registry.isLive('probe', other), false);
  });

  test('an owner whose trust lapses for a moment and comes back (no drop) still serves its shard', async () => {
    // ClusterNode: a renewal that lands after trustedUntil passed, before the watchdog looked,
    // restores the lease without a drop, so the lease loop never serves the shard again. An ask
    // that reached the owner inside that gap must not take the shard off NATS for good.
    const a = await node('a');
    const b = await node('b');
    const nft = freshNft();
    const s = own(b, nft);
    b.owned.delete(s);
    const during = await a.directory.ask('probe', nft, { type: 'echo' }, 300).then(() => 'answered', errorShape);
    assert.notEqual(during, 'answered', 'not answered while b does not trust its lease');
    assert.ok(b.directory.stats.notOwner >= 1, 'b said NOT_OWNER while its trust had lapsed');
    b.owned.add(s);
    const started = performance.now();
    const r = await a.directory.ask<{ key: string }>('probe', nft, { type: 'echo' }, 3000);
    assert.equal(r.key, nft);
    assert.ok(performance.now() - started < 1000, `answered once trusted again (${Math.round(performance.now() - started)} ms)`);
    disown(b, nft);
  });

  test('no owner until the deadline: SERVICE_UNAVAILABLE, within the deadline', async () => {
    const a = await node('a');
    const nft = freshNft();
    const started = performance.now();
    const e = await a.directory.ask('probe', nft, { type: 'echo' }, 600).then(() => assert.fail('resolved'), errorShape);
    assert.equal(e.code, 'SERVICE_UNAVAILABLE');
    assert.ok(performance.now() - started < 1500);
  });
});

describe('cluster directory: chat turns across nodes', () => {
  test('a turn started on the non-owner streams every chunk in order and the whole result, as a local turn does', async () => {
    const a = await node('a');
    const b = await node('b');
    const nft = freshNft();
    own(b, nft);
    const remote = await turn(a, nft, 'hello');
    const rr = await remote.handle.done;
    assert.deepEqual(remote.chunks, WORDS, 'every chunk, in order');
    assert.deepEqual(remote.opened, [remote.handle.conversation_id], 'opened once, with the conversation id');
    assert.equal(rr.conversation_id, remote.handle.conversation_id);
    const local = await turn(b, nft, 'hello');
    const lr = await local.handle.done;
    assert.deepEqual(comparable(rr), comparable(lr), 'the same TurnResult (usage, truncation, stored)');
    assert.deepEqual(comparable(rr), {
      response: WORDS.join(''), tokens_used: 7 + WORDS.length, incomplete: false, truncated: false, prompt_tokens: 7, completion_tokens: WORDS.length, stored: true, error: undefined,
    });
    // The conversation lives on the owner: its WS frames were published there.
    const frames = b.frames.get(chatTopic(rr.conversation_id)) ?? [];
    assert.equal(frames.length, WORDS.length + 1);
    assert.match(frames.at(-1)!, /"done":true/);
    // A second turn continues the same conversation from the other node.
    const again = await turn(a, nft, 'more', { conversationId: rr.conversation_id });
    assert.equal((await again.handle.done).conversation_id, rr.conversation_id);
    assert.equal((await new SqliteConversationsStore(b.db, log).page(rr.conversation_id, 10, 0)).total, 4);
    assert.equal(a.registry.isLive(AGENT_ACTOR, nft), false);
  });

  test('a turn forwarded while no node owns the NFT waits for the new owner (latency, not an error)', async () => {
    const a = await node('a');
    const b = await node('b', { heartbeatMs: 600 });
    const nft = freshNft();
    const started = performance.now();
    const pending = turn(a, nft, 'first-slow');
    // Longer than the receiver's silence window (1 s here): retrying the forward is not silence.
    await sleep(1300);
    own(b, nft);
    const t = await pending;
    const r = await t.handle.done;
    assert.ok(performance.now() - started >= 1250);
    assert.equal(r.incomplete, false);
    assert.deepEqual(t.chunks, WORDS);
  });

  test('a turn whose forward waits for an owner past the silence window is not ended owner_lost while another turn streams', async () => {
    const a = await node('a', { silenceMs: 600 });
    const b = await node('b', { heartbeatMs: 150 });
    const busy = freshNft();
    own(b, busy);
    // A turn streaming from b keeps a's silence watchdog running meanwhile.
    const ac = new AbortController();
    const streaming = await turn(a, busy, 'slow', { signal: ac.signal });
    const nft = freshNft();
    const pending = turn(a, nft, 'hello');
    // Twice the silence window with nobody owning the NFT (a handoff's release-to-claim gap)...
    await sleep(1300);
    own(b, nft);
    // ...is latency: the turn runs on the owner that claimed it and its client gets the reply.
    const t = await pending;
    const r = await t.handle.done;
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.incomplete, false);
    assert.deepEqual(t.chunks, WORDS);
    ac.abort();
    await streaming.handle.done;
  });

  test('two turns of one conversation in flight from the non-owner each get only their own chunks', async () => {
    const a = await node('a');
    const b = await node('b');
    const nft = freshNft();
    own(b, nft);
    const first = await turn(a, nft, 'one');
    const id = (await first.handle.done).conversation_id;
    const [x, y] = await Promise.all([turn(a, nft, 'two', { conversationId: id }), turn(a, nft, 'three', { conversationId: id })]);
    const [rx, ry] = await Promise.all([x.handle.done, y.handle.done]);
    assert.deepEqual(x.chunks, WORDS);
    assert.deepEqual(y.chunks, WORDS);
    assert.equal(rx.incomplete || ry.incomplete, false);
  });

  test('a turn the owner refuses fails as a local one does (same ApiError)', async () => {
    const a = await node('a');
    const b = await node('b');
    const nft = freshNft();
    own(b, nft);
    const missing = { conversationId: 'no-such-conversation' };
    const remote = await turn(a, nft, 'x', missing).then(() => assert.fail('resolved'), errorShape);
    const local = await turn(b, nft, 'x', missing).then(() => assert.fail('resolved'), errorShape);
    assert.deepEqual(remote, local);
  });

  test('cancel is a forwarded message: the client going away ends the turn on the owner, stored incomplete', async () => {
    const a = await node('a');
    const b = await node('b');
    const nft = freshNft();
    own(b, nft);
    const ac = new AbortController();
    const t = await turn(a, nft, 'slow', { signal: ac.signal });
    await waitFor(() => t.chunks.length >= 5 || undefined);
    ac.abort();
    const r = await t.handle.done;
    assert.equal(r.incomplete, true);
    assert.equal(r.error, undefined, 'a client that left is not an error');
    assert.equal(r.stored, true);
    const rows = (await new SqliteConversationsStore(b.db, log).page(r.conversation_id, 10, 0)).messages;
    assert.equal(rows.at(-1)!.incomplete, 1);
    // A deadline (an ApiError reason) travels as itself.
    const ac2 = new AbortController();
    const t2 = await turn(a, nft, 'slow', { signal: ac2.signal, conversationId: r.conversation_id });
    await waitFor(() => t2.chunks.length >= 1 || undefined);
    ac2.abort(new ApiError('TIMEOUT', 'The reply ran past its deadline'));
    const r2 = await t2.handle.done;
    assert.equal(r2.error?.code, 'TIMEOUT');
    assert.equal(r2.error?.status, 504);
  });

  test('a clear is forwarded and answers the rows deleted', async () => {
    const a = await node('a');
    const b = await node('b');
    const nft = freshNft();
    own(b, nft);
    const t = await turn(a, nft, 'hello');
    const id = (await t.handle.done).conversation_id;
    const cleared = await a.directory.ask<ClearHandle>(AGENT_ACTOR, nft, { type: 'clear', wallet: '0xabc', conversationId: id } satisfies AgentMsg);
    assert.equal(await cleared.done, 2);
  });

  test('the owner dying mid-turn ends the stream incomplete on the receiver within the deadline, never a hang', async () => {
    const a = await node('a', { silenceMs: 800 });
    const b = await node('b', { heartbeatMs: 150 });
    const nft = freshNft();
    own(b, nft);
    const t = await turn(a, nft, 'stall');
    await waitFor(() => t.chunks.length >= 2 || undefined);
    // Heartbeats keep a silent model's turn alive...
    await sleep(1200);
    const late = await Promise.race([t.handle.done.then(() => 'ended'), sleep(10).then(() => 'running')]);
    assert.equal(late, 'running', 'heartbeats kept a slow turn alive past the silence window');
    // ...until the owner is gone (its NATS link dies with it).
    const died = performance.now();
    await b.nc.close();
    const r = await t.handle.done;
    const took = performance.now() - died;
    assert.ok(took < 800 + 1000, `ended ${Math.round(took)} ms after the owner died`);
    assert.equal(r.incomplete, true);
    assert.equal(r.error?.code, 'SERVICE_UNAVAILABLE');
    assert.equal(r.error?.details.reason, 'owner_lost');
    assert.equal(r.response, WORDS.slice(0, 2).join(''), 'the partial reply it had');
    // WS followers of the conversation on the receiving node get a final frame.
    const last = a.frames.get(chatTopic(r.conversation_id))?.at(-1);
    assert.match(last ?? '', /"done":true.*"incomplete":true/);
    b.registry.stopAll();
  });

  test('an owner that is alive but went silent (its frames lost) is told to stop the turn, so it does not go on calling the model', async () => {
    const a = await node('a', { silenceMs: 600 });
    // Heartbeats far apart: to the receiver the owner is silent, though it is running.
    const b = await node('b', { heartbeatMs: 60_000 });
    const nft = freshNft();
    own(b, nft);
    const t = await turn(a, nft, 'stall');
    const r = await t.handle.done;
    assert.equal(r.error?.details.reason, 'owner_lost');
    // The owner's stalled model was aborted by the cancel: it stores the partial reply as incomplete.
    const row = (await waitFor(() => b.db.prepare("SELECT content, incomplete FROM messages WHERE conversation_id = ? AND role = 'assistant'").get(r.conversation_id) as { content: string; incomplete: number } | undefined, 5000))!;
    assert.equal(row.incomplete, 1);
    assert.equal(row.content, WORDS.slice(0, 2).join(''));
    b.registry.stopAll();
  });
});

describe('cluster directory: a retry does nothing twice (ask ids)', () => {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  async function raw(): Promise<NatsConnection> {
    const c = await connect({ servers: nats.url });
    conns.push(c);
    return c;
  }
  async function send(c: NatsConnection, shard: number, body: unknown): Promise<any> {
    const m = await c.request(`panthers.shard.${shard}`, enc.encode(JSON.stringify(body)), { timeout: 5000 });
    return JSON.parse(dec.decode(m.data));
  }

  test('an ask repeated with its id is answered with the first reply (or waits for it), not run again; a new id runs', async () => {
    const b = await node('b');
    const nft = freshNft();
    const shard = own(b, nft);
    const c = await raw();
    // Settled first: the repeat gets the same answer, the actor saw one message.
    const first = await send(c, shard, { id: 'ask-00000001', k: 'probe', key: nft, m: { type: 'echo' } });
    const again = await send(c, shard, { id: 'ask-00000001', k: 'probe', key: nft, m: { type: 'echo' } });
    assert.deepEqual(first, { ok: { key: nft, n: 1, nested: { list: [1, 'two', null], ok: true } } });
    assert.deepEqual(again, first);
    // Still running: both attempts wait for the one run.
    const [x, y] = await Promise.all([
      send(c, shard, { id: 'ask-00000002', k: 'probe', key: nft, m: { type: 'slow-echo', ms: 300 } }),
      sleep(100).then(() => send(c, shard, { id: 'ask-00000002', k: 'probe', key: nft, m: { type: 'slow-echo', ms: 300 } })),
    ]);
    assert.deepEqual(x, { ok: { key: nft, n: 2 } });
    assert.deepEqual(y, x);
    // An error is an answer too: repeated, not re-run.
    const e1 = await send(c, shard, { id: 'ask-00000003', k: 'probe', key: nft, m: { type: 'fail' } });
    assert.equal(e1.error.code, 'CONFLICT');
    assert.deepEqual(await send(c, shard, { id: 'ask-00000003', k: 'probe', key: nft, m: { type: 'fail' } }), e1);
    // Another id is another ask.
    assert.deepEqual(await send(c, shard, { id: 'ask-00000004', k: 'probe', key: nft, m: { type: 'echo' } }), { ok: { key: nft, n: 3, nested: { list: [1, 'two', null], ok: true } } });
    assert.equal(b.forwarder.stats.deduped, 3);
  });

  test('"not owner" did nothing, so it is not remembered: the same id runs once the shard is served here', async () => {
    const b = await node('b');
    const nft = freshNft();
    const shard = own(b, nft);
    const c = await raw();
    // The lease is gone but the subject is still served for a moment: NOT_OWNER.
    b.owned.delete(shard);
    assert.deepEqual(await send(c, shard, { id: 'ask-00000010', k: 'probe', key: nft, m: { type: 'echo' } }), { notOwner: true });
    own(b, nft);
    assert.equal((await send(c, shard, { id: 'ask-00000010', k: 'probe', key: nft, m: { type: 'echo' } })).ok.n, 1);
  });

  test('a forward with no reply within an attempt is sent again with the same id: the owner runs it once', async () => {
    const a = await node('a', { attemptMs: 150 });
    const b = await node('b');
    const nft = freshNft();
    own(b, nft);
    // The owner takes 600 ms: the asker's attempts time out at 150, 300, 450 ms and are sent again.
    const r = await a.directory.ask<{ n: number }>('probe', nft, { type: 'slow-echo', ms: 600 }, 5000);
    assert.equal(r.n, 1);
    assert.ok(a.forwarder.stats.retried >= 2, `sent again (${a.forwarder.stats.retried} retries)`);
    assert.ok(b.forwarder.stats.deduped >= 2, `repeats answered with the first run (${b.forwarder.stats.deduped})`);
    assert.equal((await a.directory.ask<{ n: number }>('probe', nft, { type: 'echo' })).n, 2, 'the slow ask ran once');
  });

  test('an owner that never answers: the ask fails at its deadline saying the outcome is unknown', async () => {
    const a = await node('a', { attemptMs: 150 });
    const nft = freshNft();
    const shard = shardOf(nft);
    // A subscriber that takes every ask and never replies (a node that died after receiving).
    const sink = await raw();
    sink.subscribe(`panthers.shard.${shard}`, { callback: () => undefined });
    await sink.flush();
    const started = performance.now();
    const e = await a.directory.ask('probe', nft, { type: 'echo' }, 700).then(() => assert.fail('resolved'), errorShape);
    assert.ok(performance.now() - started < 1500);
    assert.equal(e.code, 'SERVICE_UNAVAILABLE');
    assert.deepEqual(e.details, { reason: 'forward_failed', outcome: 'unknown' });
  });

  test('a forwarded turn sent twice with its id runs once: one model call, one stored exchange, one result frame', async () => {
    const b = await node('b');
    const nft = freshNft();
    const shard = own(b, nft);
    const c = await raw();
    const tag = 'deadbeefdeadbeef';
    const uuid = '0b6f2d4e-3c1a-4f7e-9a2b-5c8d7e6f1a2b';
    const id = `${tag}:${uuid}`;
    const results: unknown[] = [];
    c.subscribe(`panthers.frames.turn.${tag}.${uuid}.*`, {
      callback: (_e, m) => {
        for (const f of dec.decode(m.data).split('\n')) if (f.includes('"result"')) results.push(JSON.parse(f));
      },
    });
    await c.flush();
    const conversation = '3f1c2b7a-9d4e-4a6b-8c2d-1e0f9a8b7c6d';
    const body = { id, k: AGENT_ACTOR, key: nft, t: 5000, turn: { turn: id, msg: { type: 'turn', wallet: '0xabc', message: 'hello', newConversationId: conversation } } };
    const [x, y] = await Promise.all([send(c, shard, body), send(c, shard, body)]);
    assert.equal(x.ok.conversation_id, conversation);
    assert.match(x.ok.run, /^[0-9a-f]{8}$/, 'the answer names the run that streams');
    assert.deepEqual(y, x);
    await waitFor(() => results.length > 0 || undefined);
    // A third attempt after it ended: the same answer, still one run.
    assert.deepEqual(await send(c, shard, body), x);
    await sleep(200);
    assert.equal(results.length, 1, 'one result frame');
    const page = await new SqliteConversationsStore(b.db, log).page(conversation, 10, 0);
    assert.deepEqual(page.messages.map((m) => m.role), ['user', 'assistant'], 'one stored exchange');
  });

  /**
   * The first owner took the turn, stored its message (and maybe its reply), streamed a little and
   * died before answering: played here by a raw subscriber writing to the file the next owner
   * reads (the shared store). The asker's attempt times out and is sent again, now to the next owner.
   */
  async function resentThroughFailover(storeReply: boolean) {
    const db = openDatabase(tempDir());
    const a = await node('a', { attemptMs: 150 });
    const c = await node('c', { db });
    const nft = freshNft();
    const shard = shardOf(nft);
    const store = new SqliteConversationsStore(db, log);
    const first = await raw();
    const asks: any[] = [];
    first.subscribe(`panthers.shard.${shard}`, {
      callback: (_e, m) => {
        const body = JSON.parse(dec.decode(m.data));
        asks.push(body);
        if (asks.length > 1) return;
        void (async () => {
          const turnId: string = body.turn.turn;
          const cid: string = body.turn.msg.newConversationId;
          store.create({ id: cid, nft_token_id: nft, wallet: '0xabc', created_at: 1, updated_at: 1 });
          await store.appendCommitted(cid, 'user', body.turn.msg.message, 1, false, 1, undefined, turnId);
          if (storeReply) await store.appendCommitted(cid, 'assistant', 'the first owner said this', 5, false, 2, undefined, turnId);
          // It streamed under its own run before dying: none of that may reach the client.
          first.publish(`panthers.frames.turn.${turnId.replace(':', '.')}.deadbeef`, enc.encode(JSON.stringify('GHOST ')));
          await first.flush();
          own(c, nft);
        })();
      },
    });
    await first.flush();
    const message = `resent-${storeReply}-${nft}`;
    const t = await turn(a, nft, message);
    const r = await t.handle.done;
    first.close();
    const page = await new SqliteConversationsStore(db, log).page(t.handle.conversation_id, 10, 0);
    return { r, t, page, asks, message };
  }

  test('a turn resent to the next owner after the first stored its message is answered once: the message is not stored again', async () => {
    const { r, t, page, asks, message } = await resentThroughFailover(false);
    assert.equal(r.error, undefined);
    assert.equal(r.incomplete, false);
    assert.equal(t.chunks.join(''), WORDS.join(''), 'the next owner\'s reply, and nothing of the first owner\'s run');
    assert.equal(r.response, WORDS.join(''));
    assert.deepEqual(page.messages.map((m) => [m.role, m.content]), [['user', message], ['assistant', WORDS.join('')]], 'one message, one reply');
    assert.equal(calls.get(message), 1, 'one model call on the next owner');
    assert.equal(asks[0].again, undefined, 'the first attempt is a first attempt');
    assert.ok(asks.slice(1).every((b) => b.again === 1), 'every attempt after it says it was sent before');
  });

  test('a turn resent after the first owner stored its reply gets that reply, and the model is not called again', async () => {
    const { r, t, page, message } = await resentThroughFailover(true);
    assert.equal(r.error, undefined);
    assert.equal(r.incomplete, false);
    assert.deepEqual(t.chunks, ['the first owner said this']);
    assert.equal(r.response, 'the first owner said this');
    assert.deepEqual(page.messages.map((m) => m.role), ['user', 'assistant']);
    assert.equal(calls.get(message), undefined, 'no model call');
  });
});
