/**
 * What location transparency costs (not a test): an ask through the cluster directory when this
 * node owns the NFT (the local path), when it is forwarded over NATS to the owner, and a chat
 * turn's chunks when the turn runs on another node, against a real nats-server started here.
 * Both "nodes" are in this process (two ActorRegistry instances, two NATS connections), so the CPU
 * figures are asker + owner together; latency is the round trip. Two loaded cores measure
 * contention, not scale.
 *   node dist/bench/cluster-directory.bench.js [--n 2000] [--chunks 200] [--turns 50]
 */
import pino from 'pino';
import { connect } from '@nats-io/transport-node';
import { parseArgs } from '../bin/args.js';
import { startNats } from '../test/helpers/engines.js';
import { tempDir } from '../test/helpers/server.js';
import { ActorRegistry } from '../actors/registry.js';
import { agentActorKind } from '../actors/agent-actor.js';
import { ClusterDirectory } from '../src/cluster/cluster-directory.js';
import { shardOf } from '../src/cluster/shards.js';
import { openDatabase } from '../src/db/database.js';
import { SqliteConversationsStore } from '../src/agents/conversations-store.sqlite.js';
import { AGENT_ACTOR, type AgentMsg, type TurnHandle } from '../src/contracts/agent-messages.js';
import type { ModelBackend, ModelRequest, ModelEvent } from '../src/models/model-backend.js';

const { flags } = parseArgs(process.argv.slice(2));
const N = Number(flags.n ?? 2000);
const CHUNKS = Number(flags.chunks ?? 200);
const TURNS = Number(flags.turns ?? 50);
const log = pino({ level: 'silent' });
const nats = await startNats();

/** CHUNKS deltas, ten per event-loop turn (a fast local model's pace). */
const model: ModelBackend = {
  name: 'scripted',
  defaultModel: 'bench',
  async *stream(req: ModelRequest): AsyncIterable<ModelEvent> {
    for (let i = 0; i < CHUNKS; i++) {
      if (req.signal.aborted) return;
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      yield { type: 'delta', content: 'token ' };
    }
    yield { type: 'usage', promptTokens: 10, completionTokens: CHUNKS };
  },
};

async function node(owned: Set<number>) {
  const nc = await connect({ servers: nats.url, noEcho: true });
  const db = openDatabase(tempDir('panthers-bench-'));
  const registry = new ActorRegistry({ log, idleMs: 600_000 });
  registry.register({ name: 'probe', create: () => ({ receive: (m: unknown) => m }) });
  registry.register(agentActorKind({
    repo: new SqliteConversationsStore(db, log),
    publisher: { publish: () => {}, subscribers: () => 0, subscriptions: 0 },
    log,
    now: Date.now,
    character: (nft) => ({ name: nft, system_prompt: 'be brief', model: 'bench', capabilities: [] }),
    model: () => ({ backend: model, model: 'bench' }),
    concurrency: 64,
    historyTokenBudget: 1000,
  }));
  const directory = new ClusterDirectory({
    local: registry, nc, log, localPublish: () => {},
    leases: { ownedEpoch: (s) => (owned.has(s) ? 1 : undefined) },
    shardedKinds: [AGENT_ACTOR, 'probe'],
  });
  for (const s of owned) directory.serveShard(s);
  await nc.flush();
  return { nc, db, registry, directory };
}

function line(name: string, n: number, ms: number, cpu: NodeJS.CpuUsage, inFlight: number, unit = 'op'): void {
  const us = (cpu.user + cpu.system) / n;
  console.log(`${name.padEnd(52)} ${(n / (ms / 1000)).toFixed(0).padStart(8)} /s  ${((ms / n) * inFlight).toFixed(3).padStart(8)} ms each  ${us.toFixed(1).padStart(7)} us CPU/${unit}`);
}

async function measure(name: string, n: number, inFlight: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < Math.min(200, n); i++) await fn(i);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < n) await fn(next++);
  }));
  line(name, n, performance.now() - t0, process.cpuUsage(cpu0), inFlight);
}

const NFT = '42';
const shard = shardOf(NFT);
const a = await node(new Set());
const b = await node(new Set([shard]));
try {
  const msg = { type: 'get', i: 0 };
  // Warm both paths first, so the first line does not pay the JIT for the others.
  for (let i = 0; i < 3000; i++) await b.registry.ask('probe', NFT, msg);
  for (let i = 0; i < 3000; i++) await b.directory.ask('probe', NFT, msg);
  for (let i = 0; i < 1000; i++) await a.directory.ask('probe', NFT, msg);
  await measure('registry.ask (one process, no directory)', N, 1, () => b.registry.ask('probe', NFT, msg));
  await measure('directory.ask, this node owns the shard', N, 1, () => b.directory.ask('probe', NFT, msg));
  await measure('directory.ask, forwarded over NATS (1 in flight)', N, 1, () => a.directory.ask('probe', NFT, msg));
  await measure('directory.ask, forwarded over NATS (16 in flight)', N, 16, () => a.directory.ask('probe', NFT, msg));

  const turn = async (d: ClusterDirectory) => {
    const h = await d.ask<TurnHandle>(AGENT_ACTOR, NFT, { type: 'turn', wallet: '0xbench', message: 'hi', listener: { onChunk: () => {} } } satisfies AgentMsg);
    const r = await h.done;
    if (r.incomplete) throw new Error('incomplete turn');
  };
  for (const [name, d] of [['chat turn on the owner (local)', b.directory], ['chat turn forwarded from another node', a.directory]] as const) {
    for (let i = 0; i < 5; i++) await turn(d);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < TURNS; i++) await turn(d);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    line(`${name} (${CHUNKS} chunks)`, TURNS, ms, cpu, 1, 'turn');
    console.log(`${''.padEnd(52)} ${((cpu.user + cpu.system) / (TURNS * CHUNKS)).toFixed(2).padStart(8)} us CPU/chunk (both nodes)`);
  }
} finally {
  for (const n of [a, b]) {
    n.directory.close();
    n.registry.stopAll();
    await n.nc.close();
    n.db.close();
  }
  nats.stop();
}
