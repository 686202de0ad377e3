/**
 * What the storage seam costs on PostgreSQL (not a test), against a real PostgreSQL 15 started
 * here (test/helpers/engines.ts, fsync=off): database round trips and WAL bytes per chat turn
 * through the conversations store (pg_current_wal_lsn before/after N turns), and the latency
 * and this process's CPU of a fenced write (lease FOR SHARE in the same statement) against the
 * same write unfenced, one in flight. SQLite's figures for the same turns are printed beside.
 *   node dist/bench/pg-stores.bench.js [--n 500]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from '../bin/args.js';
import { startPostgres } from '../test/helpers/engines.js';
import { tempDir } from '../test/helpers/server.js';
import { openPg, migratePg } from '../src/db/pg.js';
import { openDatabase } from '../src/db/database.js';
import { PgConversationsStore } from '../src/agents/conversations-store.pg.js';
import { SqliteConversationsStore } from '../src/agents/conversations-store.sqlite.js';
import { PgDeploymentsStore } from '../src/deployments/deployments-store.pg.js';
import type { ConversationsStore } from '../src/agents/conversations-store.js';
import type { Deployment } from '../src/deployments/deployments-store.js';
import type { Fence } from '../src/db/fence.js';
import { shardOf } from '../src/cluster/shards.js';
import { ActorRegistry } from '../actors/registry.js';
import { agentActorKind } from '../actors/agent-actor.js';
import { AGENT_ACTOR, type TurnHandle } from '../src/contracts/agent-messages.js';
import { ScriptedBackend } from '../adapters/models/scripted.js';
import { defaultCharacter } from '../src/agents/character.js';
import { createLogger } from '../src/logger.js';

const { flags } = parseArgs(process.argv.slice(2));
const N = Number(flags.n ?? 500);
const pg = await startPostgres();
let statements = 0;
const sql = openPg(pg.url, { max: 4, debug: () => void statements++ });

/** One chat turn as the AgentActor stores it: the user's message (committed before the model), then the reply. */
async function turn(store: ConversationsStore, conversationId: string, fence?: Fence): Promise<void> {
  await store.appendCommitted(conversationId, 'user', 'What is the weather like on the moon today?', 11, false, Date.now(), fence);
  await store.context(conversationId, 2000);
  await store.appendCommitted(conversationId, 'assistant', 'It is always sunny on one side and dark on the other; no weather, no air. '.repeat(4), 80, false, Date.now(), fence);
}

async function timed(name: string, n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < Math.min(50, n); i++) await fn(i);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(`${name.padEnd(52)} ${((ms / n) * 1000).toFixed(0).padStart(6)} us each  ${((cpu.user + cpu.system) / n).toFixed(0).padStart(5)} us CPU/op (this process)`);
}

try {
  await migratePg(sql);
  const nft = 'bench-nft';
  const shard = shardOf(nft);
  const [l] = await sql<{ epoch: number }[]>`UPDATE shard_leases SET owner = 'bench', epoch = epoch + 1, expires_at = now() + interval '1 hour' WHERE shard = ${shard} RETURNING epoch`;
  const fence: Fence = { shard, epoch: l!.epoch, node: 'bench' };
  const conversations = new PgConversationsStore(sql);

  // Round trips and WAL per turn (a continued conversation: write, read the context, write).
  const id = randomUUID();
  conversations.create({ id, nft_token_id: nft, wallet: '0xabc', created_at: Date.now(), updated_at: Date.now() }, fence);
  await turn(conversations, id, fence);
  const [w0] = await sql<{ lsn: string }[]>`SELECT pg_current_wal_lsn()::text AS lsn`;
  const s0 = statements;
  for (let i = 0; i < N; i++) await turn(conversations, id, fence);
  const trips = (statements - s0 - 1) / N; // minus the LSN query itself
  const [wal] = await sql<{ bytes: number }[]>`SELECT (pg_current_wal_lsn() - ${w0!.lsn}::pg_lsn)::bigint AS bytes`;
  console.log(`chat turn through the PostgreSQL store (fenced), ${N} turns: ${trips.toFixed(2)} round trips/turn (2 writes + 1 context read), ${(wal!.bytes / N).toFixed(0)} WAL bytes/turn`);

  // The same through the AgentActor, as a node runs it (scripted model, no timers): what one
  // turn costs the database end to end, a new conversation and then continued ones.
  const log = createLogger({ level: 'silent' });
  const actors = new ActorRegistry({ log, idleMs: 60_000 });
  const backend = new ScriptedBackend({ delayMs: 0 });
  const actorStore = new PgConversationsStore(sql);
  actors.register(agentActorKind({
    repo: actorStore, fenceFor: () => fence, publisher: { publish: () => {}, subscribers: () => 0, subscriptions: 0 }, log, now: Date.now,
    character: (n) => defaultCharacter(n, 'scripted'), model: () => ({ backend, model: 'scripted' }), concurrency: 4, historyTokenBudget: 2000,
  }));
  const actorTurn = async (conversationId?: string) => (await (await actors.ask<TurnHandle>(AGENT_ACTOR, nft, { type: 'turn', wallet: '0xabc', conversationId, message: 'Tell me about the moon.' })).done);
  let s1 = statements;
  const first = await actorTurn();
  const newTrips = statements - s1;
  await actorTurn(first.conversation_id);
  s1 = statements;
  const [a0] = await sql<{ lsn: string }[]>`SELECT pg_current_wal_lsn()::text AS lsn`;
  for (let i = 0; i < N; i++) await actorTurn(first.conversation_id);
  const [aw] = await sql<{ bytes: number }[]>`SELECT (pg_current_wal_lsn() - ${a0!.lsn}::pg_lsn)::bigint AS bytes`;
  console.log(`chat turn through the AgentActor (fenced): new conversation ${newTrips} round trips, continued ${((statements - s1 - 1) / N).toFixed(2)} round trips/turn, ${(aw!.bytes / N).toFixed(0)} WAL bytes/turn`);
  actors.stopAll();

  await timed('PostgreSQL chat turn (fenced): 2 writes + 1 read', N, () => turn(conversations, id, fence));
  await timed('PostgreSQL message append, fenced', N, (i) => conversations.appendCommitted(id, 'user', `m${i}`, 1, false, Date.now(), fence));
  await timed('PostgreSQL message append, plain', N, (i) => conversations.appendCommitted(id, 'user', `m${i}`, 1, false, Date.now()));

  const deployments = new PgDeploymentsStore(sql);
  const now = Date.now();
  const d: Deployment = {
    id: randomUUID(), nft_token_id: nft, wallet: '0xabc', provider: 'local', status: 'deploying', progress: 1, endpoint_url: null,
    resources: { cpu: 1, memory_mb: 512, disk_mb: 1024, gpu: 0 }, agent: { name: 'A', system_prompt: 'p', model: 'scripted', capabilities: ['chat'] },
    provider_ref: null, details: null, error: null, health: null, created_at: now, updated_at: now,
  };
  await deployments.insert(d, 'queued', fence);
  await timed('PostgreSQL deployment save + event, fenced', N, (i) => deployments.save({ ...d, progress: 1 + (i % 98) }, 'step', fence));
  await timed('PostgreSQL deployment save + event, plain', N, (i) => deployments.save({ ...d, progress: 1 + (i % 98) }, 'step'));

  const db = openDatabase(tempDir('panthers-bench-'));
  const lite = new SqliteConversationsStore(db);
  const lid = randomUUID();
  lite.create({ id: lid, nft_token_id: nft, wallet: '0xabc', created_at: now, updated_at: now });
  await timed('SQLite chat turn: 2 writes + 1 read', N, () => turn(lite, lid));
  db.close();
} finally {
  await sql.end({ timeout: 1 });
  pg.stop();
}
