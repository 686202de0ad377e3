import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ActorRegistry, type ActorKind, type Behaviour } from '../../actors/registry.js';
import { createLogger } from '../../src/logger.js';

/**
 * Drives the project's ActorRegistry in its own process (pinned by the harness, run with
 * --expose-gc) with a small actor kind whose state is one SQLite row, as real actors rebuild
 * theirs. Prints one JSON line of figures.
 */
const actors = Number(process.argv[2] ?? 10_000);
const oneActorMessages = Number(process.argv[3] ?? 50_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panthers-actors-'));
const db = new Database(path.join(dir, 'actors.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE counters (key TEXT PRIMARY KEY, n INTEGER NOT NULL)');
const load = db.prepare<[string], { n: number }>('SELECT n FROM counters WHERE key = ?');

let clock = Date.now();
const registry = new ActorRegistry({ log: createLogger({ level: 'warn' }), idleMs: 60_000, now: () => clock });

type Msg = { add: number };
/** Counts what it receives; rebuilt from its row when spawned or rehydrated. */
const counter: ActorKind<Msg, number> = {
  name: 'bench_counter',
  create(key): Behaviour<Msg, number> {
    let n = load.get(key)?.n ?? 0;
    return { receive: (m) => (n += m.add) };
  },
};
registry.register(counter);

function heapMb(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

async function inBatches(n: number, f: (i: number) => Promise<unknown>, batch = 1000): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    const ps: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(n, i + batch); j++) ps.push(f(j));
    await Promise.all(ps);
  }
}

// One actor: tells, then one ask that waits behind them in the mailbox.
await registry.ask('bench_counter', 'one', { add: 1 });
let t = performance.now();
for (let i = 0; i < oneActorMessages - 1; i++) registry.tell('bench_counter', 'one', { add: 1 });
await registry.ask('bench_counter', 'one', { add: 1 }, 120_000);
const oneActorPerSec = oneActorMessages / ((performance.now() - t) / 1000);
registry.passivate('bench_counter', 'one');

// Spawn: the first message to each of N actors.
const heap0 = heapMb();
const rss0 = process.memoryUsage().rss / 2 ** 20;
t = performance.now();
await inBatches(actors, (i) => registry.ask('bench_counter', `a${i}`, { add: 1 }));
const spawnUs = ((performance.now() - t) * 1000) / actors;
const heap1 = heapMb();
const rss1 = process.memoryUsage().rss / 2 ** 20;

// Spread: messages to live actors, round-robin over all of them.
const spreadMessages = actors * 2;
t = performance.now();
await inBatches(spreadMessages, (i) => registry.ask('bench_counter', `a${i % actors}`, { add: 1 }));
const spreadPerSec = spreadMessages / ((performance.now() - t) / 1000);

// Passivate every idle actor with the registry's own sweep.
clock += 120_000;
t = performance.now();
registry.sweep();
const passivateUs = ((performance.now() - t) * 1000) / actors;
const left = registry.count('bench_counter');

// Rehydrate: the next message rebuilds each actor from its row.
t = performance.now();
await inBatches(actors, (i) => registry.ask('bench_counter', `a${i}`, { add: 1 }));
const rehydrateUs = ((performance.now() - t) * 1000) / actors;

registry.stopAll();
db.close();
fs.rmSync(dir, { recursive: true, force: true });
process.stdout.write(
  JSON.stringify({
    actors, oneActorPerSec, spreadPerSec, spawnUs, passivateUs, rehydrateUs, leftAfterSweep: left,
    heapPerActorBytes: ((heap1 - heap0) * 2 ** 20) / actors,
    rssPerActorBytes: ((rss1 - rss0) * 2 ** 20) / actors,
  }) + '\n',
);
