import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../src/db/database.js';
import { SqliteConversationsStore } from '../src/agents/conversations-store.sqlite.js';
import { ActorRegistry } from '../actors/registry.js';
import { agentActorKind, AGENT_ACTOR, type TurnHandle } from '../actors/agent-actor.js';
import { ScriptedBackend } from '../adapters/models/scripted.js';
import { createLogger } from '../src/logger.js';

/**
 * Turn admission under a burst (issue 15): N chat turns opened in ONE tick on ONE agent, through
 * the registry and the agent actor as production runs them, against a temp SQLite file, the
 * scripted model pacing tokens 50 ms apart. Prints the time from the burst to the first chunk of
 * the first, the median and the last turn, and the commits it took.
 *   node dist/bench/turn-burst.js [turns=1000] [rounds=3]
 */
const turns = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 3);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turn-burst-'));
const db = openDatabase(dir);
const log = createLogger({ level: 'silent' });
let commits = 0;
const tx = db.transaction.bind(db);
// Counts commits through every variant (the chat write batch commits `.immediate()`).
type Tx = ((...a: unknown[]) => unknown) & { immediate(...a: unknown[]): unknown; deferred(...a: unknown[]): unknown; exclusive(...a: unknown[]): unknown };
(db as { transaction: typeof db.transaction }).transaction = ((fn: (...a: unknown[]) => unknown) => {
  const t = tx(fn) as unknown as Tx;
  const counted = (f: (...a: unknown[]) => unknown) => (...a: unknown[]) => {
    commits++;
    return f(...a);
  };
  return Object.assign(counted(t), { immediate: counted(t.immediate), deferred: counted(t.deferred), exclusive: counted(t.exclusive) });
}) as unknown as typeof db.transaction;
// Built after the counter is in place: the connection's write batch makes its transaction once.
const store = new SqliteConversationsStore(db, log);
const backend = new ScriptedBackend({ delayMs: 50 });
const registry = new ActorRegistry({ log, idleMs: 60_000 });
registry.register(agentActorKind({
  repo: store,
  publisher: { publish() {}, subscribers: () => 0, subscriptions: 0 },
  log,
  now: Date.now,
  character: () => ({ name: 'bench', system_prompt: 'You are a bench.', model: 'scripted' }) as never,
  model: () => ({ backend, model: 'scripted' }),
  concurrency: turns,
  historyTokenBudget: 2000,
}));

async function round(): Promise<void> {
  commits = 0;
  const first: number[] = new Array(turns);
  const t0 = performance.now();
  const done: Promise<unknown>[] = [];
  for (let i = 0; i < turns; i++) {
    let seen = false;
    const h = registry.ask<TurnHandle>(AGENT_ACTOR, 'nft-1', {
      type: 'turn', wallet: '0x' + '1'.repeat(40), message: `hello ${i}`,
      listener: { onChunk() { if (!seen) { seen = true; first[i] = performance.now() - t0; } } },
    });
    done.push(h.then((x) => x.done));
  }
  await Promise.all(done);
  const sorted = first.slice().sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(1).padStart(7);
  console.log(`turns ${turns}: first chunk  turn#0 ${f(first[0]!)} ms  earliest ${f(sorted[0]!)}  median ${f(sorted[turns >> 1]!)}  p99 ${f(sorted[Math.floor(turns * 0.99)]!)}  last ${f(sorted[turns - 1]!)}  commits ${commits}`);
}

for (let r = 0; r < rounds; r++) await round();
registry.stopAll?.();
db.close();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
