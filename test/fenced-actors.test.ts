import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type Postgres } from './helpers/engines.js';
import { pgEngine, type StoreEngine } from './helpers/store-engines.js';
import { ActorRegistry } from '../actors/registry.js';
import { deploymentActorKind, DEPLOYMENT_ACTOR, type DeploymentView } from '../actors/deployment-actor.js';
import { agentActorKind, AGENT_ACTOR, type TurnHandle } from '../actors/agent-actor.js';
import { openPgStorage, type Storage } from '../src/db/storage.js';
import { FencedError, type Fence } from '../src/db/fence.js';
import { createLogger } from '../src/logger.js';
import { ApiError } from '../src/errors.js';
import { ScriptedBackend } from '../adapters/models/scripted.js';
import { defaultCharacter } from '../src/agents/character.js';
import type { ProviderAdapter, ProviderName } from '../src/providers/provider.js';

/**
 * The actors on the PostgreSQL stores with fencing, as a cluster node runs them: a deploy is
 * written (fenced) before the provider is called, so a node whose lease moved makes no provider
 * call and writes nothing; a chat turn of such a node stores nothing either. The provider here is
 * a counter (no machine outside is involved); the stores and the lease rows are real.
 */
let pg: Postgres;
before(async () => {
  pg = await startPostgres();
});
after(() => pg?.stop());

const log = createLogger({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Node {
  engine: StoreEngine<Storage>;
  actors: ActorRegistry;
  calls: { deploy: number; stop: number };
  frames: string[];
  fence: { current: Fence | undefined };
}

async function node(opts: { delayMs?: number } = {}): Promise<Node> {
  const engine = await pgEngine(pg, (sql, dir) => openPgStorage(sql, { dataDir: dir }));
  const actors = new ActorRegistry({ log, idleMs: 60_000, queryTimeoutMs: 5000 });
  const calls = { deploy: 0, stop: 0 };
  const frames: string[] = [];
  const fence = { current: undefined as Fence | undefined };
  const local: ProviderAdapter = {
    name: 'local',
    missingConfig: () => undefined,
    async deploy(spec, ctx) {
      calls.deploy++;
      ctx.saveRef({ id: `vm-${spec.deploymentId}` });
      return { endpointUrl: 'http://127.0.0.1:1/agent', ref: { id: `vm-${spec.deploymentId}` } };
    },
    async status() {
      return { state: 'running' };
    },
    async stop() {
      calls.stop++;
    },
    async health() {
      return { ok: true, latency_ms: 1, message: 'ok' };
    },
  };
  const storage = engine.store;
  const publisher = { publish: (_t: string, f: string) => void frames.push(f), subscribers: () => 0, subscriptions: 0 };
  const fenceFor = () => {
    if (!fence.current) throw new FencedError(-1, -1);
    return fence.current;
  };
  actors.register(deploymentActorKind({
    repo: storage.deployments, fenceFor, providers: new Map<ProviderName, ProviderAdapter>([['local', local]]), run: (_p, call) => call(),
    publisher, log, now: Date.now, healthIntervalMs: 60_000, deployTimeoutMs: () => 5000,
    specFor: (d) => ({ deploymentId: d.id, nftTokenId: d.nft_token_id, resources: d.resources, agent: d.agent, env: {}, secrets: {} }),
    secrets: storage.providerSecrets,
  }));
  const backend = new ScriptedBackend({ delayMs: opts.delayMs ?? 0 });
  actors.register(agentActorKind({
    repo: storage.conversations, fenceFor, publisher, log, now: Date.now, character: (nft) => defaultCharacter(nft, 'scripted'),
    model: () => ({ backend, model: 'scripted' }), concurrency: 4, historyTokenBudget: 2000,
  }));
  return { engine, actors, calls, frames, fence };
}

const deployMsg = { type: 'deploy', wallet: '0xabc', provider: 'local', resources: { cpu: 1, memory_mb: 512, disk_mb: 1024, gpu: 0 }, agent: defaultCharacter('7', 'scripted') };

test('a node holding the lease deploys: written (fenced) first, then the provider call, then running; it reads back from another connection', async () => {
  const n = await node();
  try {
    n.fence.current = await n.engine.fenceFor!('7');
    const view = await n.actors.ask<DeploymentView>(DEPLOYMENT_ACTOR, '7', deployMsg);
    assert.equal(view.status, 'pending');
    for (let i = 0; i < 100 && (await n.engine.store.deployments.latest('7'))?.status !== 'running'; i++) await sleep(20);
    const other = n.engine.second().deployments;
    const d = (await other.latest('7'))!;
    assert.equal(d.status, 'running');
    assert.deepEqual(d.provider_ref, { id: `vm-${d.id}` });
    assert.equal(n.calls.deploy, 1);
    assert.ok(n.frames.length >= 2);
  } finally {
    n.actors.stopAll();
    await n.engine.close();
  }
});

test('a node whose lease moved (epoch bumped) makes no provider call and writes nothing', async () => {
  const n = await node();
  try {
    n.fence.current = await n.engine.fenceFor!('8');
    await n.engine.moveLease!('8');
    // Answered as a retryable error (not a crash): the actor's state is what was committed.
    await assert.rejects(n.actors.ask(DEPLOYMENT_ACTOR, '8', { ...deployMsg, agent: defaultCharacter('8', 'scripted') }), (e) => e instanceof ApiError && e.code === 'SERVICE_UNAVAILABLE');
    // A node that knows it lost the lease (fenceFor throws) is refused the same way, before any write.
    n.fence.current = undefined;
    await assert.rejects(n.actors.ask(DEPLOYMENT_ACTOR, '8', { ...deployMsg, agent: defaultCharacter('8', 'scripted') }), (e) => e instanceof ApiError && e.code === 'SERVICE_UNAVAILABLE');
    await assert.rejects(n.actors.ask(AGENT_ACTOR, '8', { type: 'turn', wallet: '0xabc', message: 'hi' }), (e) => e instanceof ApiError && e.code === 'SERVICE_UNAVAILABLE');
    await sleep(200);
    assert.equal(n.calls.deploy, 0);
    assert.equal(n.frames.length, 0);
    assert.equal(await n.engine.second().deployments.latest('8'), undefined);
  } finally {
    n.actors.stopAll();
    await n.engine.close();
  }
});

test('chat: a turn on the lease holder is stored; after the lease moved a turn stores nothing', async () => {
  const n = await node();
  try {
    n.fence.current = await n.engine.fenceFor!('9');
    const h = await n.actors.ask<TurnHandle>(AGENT_ACTOR, '9', { type: 'turn', wallet: '0xabc', message: 'hello there' });
    const r = await h.done;
    assert.equal(r.stored, true);
    assert.equal(r.error, undefined);
    const other = n.engine.second().conversations;
    assert.deepEqual((await other.page(h.conversation_id, 10, 0)).messages.map((m) => m.role), ['user', 'assistant']);
    await n.engine.moveLease!('9');
    const h2 = await n.actors.ask<TurnHandle>(AGENT_ACTOR, '9', { type: 'turn', wallet: '0xabc', conversationId: h.conversation_id, message: 'again' });
    const r2 = await h2.done;
    assert.equal(r2.stored, false);
    assert.ok(r2.error);
    assert.equal((await other.page(h.conversation_id, 10, 0)).total, 2);
  } finally {
    n.actors.stopAll();
    await n.engine.close();
  }
});

/** A turn on the lease holder, once it has streamed two chunks; `chunks` counts them. */
async function streamingTurn(n: Node, nft: string): Promise<{ h: TurnHandle; chunks: () => number }> {
  n.fence.current = await n.engine.fenceFor!(nft);
  let got = 0;
  const h = await n.actors.ask<TurnHandle>(AGENT_ACTOR, nft, { type: 'turn', wallet: '0xabc', message: 'a long answer please', listener: { onChunk: () => void got++ } });
  for (let i = 0; i < 100 && got < 2; i++) await sleep(10);
  assert.ok(got >= 2, 'the turn is streaming');
  return { h, chunks: () => got };
}

test('chat: an agent evicted while its turn streams (its lease lapsed) stops the turn at once, so the next instance never runs beside it', async () => {
  const n = await node({ delayMs: 40 });
  try {
    const { h, chunks } = await streamingTurn(n, '10');
    n.actors.evict(AGENT_ACTOR, '10');
    const t0 = performance.now();
    const r = await h.done;
    assert.ok(performance.now() - t0 < 500, 'ended at once, not when the model finished');
    assert.equal(r.incomplete, true);
    assert.equal(r.error?.code, 'SERVICE_UNAVAILABLE');
    assert.equal(r.error?.details.reason, 'not_owner');
    const after = chunks();
    await sleep(200);
    assert.equal(chunks(), after, 'no chunk after the eviction: the model is not called on');
    // The next instance (the lease held again) answers the conversation, after what the first stored.
    const h2 = await n.actors.ask<TurnHandle>(AGENT_ACTOR, '10', { type: 'turn', wallet: '0xabc', conversationId: h.conversation_id, message: 'again' });
    assert.equal((await h2.done).error, undefined);
    const rows = (await n.engine.second().conversations.page(h.conversation_id, 10, 0)).messages;
    assert.deepEqual(rows.map((m) => [m.role, Boolean(m.incomplete)]), [['user', false], ['assistant', true], ['user', false], ['assistant', false]]);
  } finally {
    n.actors.stopAll();
    await n.engine.close();
  }
});

test('chat: a reply whose lease moved while it streamed is refused by the fence and answered as not_owner, incomplete (not a 500)', async () => {
  const n = await node({ delayMs: 30 });
  try {
    const { h } = await streamingTurn(n, '11');
    await n.engine.moveLease!('11');
    const r = await h.done;
    assert.equal(r.incomplete, true, 'a reply that is not stored is not a whole turn');
    assert.equal(r.error?.code, 'SERVICE_UNAVAILABLE');
    assert.equal(r.error?.details.reason, 'not_owner');
    assert.deepEqual((await n.engine.second().conversations.page(h.conversation_id, 10, 0)).messages.map((m) => m.role), ['user']);
  } finally {
    n.actors.stopAll();
    await n.engine.close();
  }
});
