import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { DB_FILE } from '../../src/db/database.js';
import { NA_MISSING, Samples, summarize, type MetricResult } from '../lib/results.js';
import { sleep, spawnProc } from '../lib/proc.js';
import { PEERS_DIR } from '../lib/servers.js';
import { StreamLoad } from '../lib/stream-load.js';
import { CHAT_MESSAGE } from '../lib/world.js';
import { joinNotes, rounds, type BenchContext, type Scenario } from '../lib/context.js';

const PEERS = ['fastify', 'sqlite-raw'] as const;
/** Streams the same turns and writes nothing: the most turns (2 rows each) any chat path gets here. */
const CEILING = 'uws-raw';
const DELAY_MS = 1;
const WRITE_PATH_WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'write-path-worker.js');

function runWorker(ctx: BenchContext, file: string): Promise<{ rows_per_s: number }> {
  const p = spawnProc(ctx.tools, process.execPath, [file], {
    cpu: ctx.tools.serverCpu,
    env: { BENCH_SECONDS: String(ctx.sizes.windowSec), BENCH_WRITERS: String(ctx.sizes.writeClients) },
  });
  return p.exited.then((code) => {
    if (code !== 0) throw new Error(`${path.basename(file)} exited ${code}: ${p.output().slice(-500)}`);
    return JSON.parse(p.output().trim().split('\n').pop()!) as { rows_per_s: number };
  });
}

function lastMessageId(dbFile: string): number {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT COALESCE(MAX(id), 0) AS n FROM messages').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * Chat messages persisted per second through each server's own chat path while its streams run
 * (WS clients looping fast scripted turns; rows counted in the messages table), against
 * fastify's write path and raw better-sqlite3 single-row commits (the floor).
 * Every turn persists two rows and streams its chunks, so `messages_per_s` is twice the turns a
 * server completes: `turns_per_s` sets it beside uws-raw streaming the same turns with no
 * writes at all (the ceiling of any chat path here), and `write_path` measures the project's
 * write path alone (ConversationsRepo's group commit, in-process, as many writers as streams).
 */
export const sqliteWrites: Scenario = {
  name: 'sqlite_writes',
  needs: ['auth', 'deploy', 'chat_ws'],
  async run(ctx: BenchContext): Promise<MetricResult[]> {
    const { sizes, world, tools } = ctx;
    const missing = world.missingFor(this.needs);
    const who = [...(missing ? [] : ['project']), ...PEERS, CEILING];
    const rate = new Samples();
    const turns = new Samples();
    const writePath = new Samples();
    const failed = await rounds(ctx, who, async (w, round) => {
      if (w === 'sqlite-raw') {
        const r = await runWorker(ctx, path.join(PEERS_DIR, 'sqlite-raw.js'));
        rate.add(w, r.rows_per_s);
        writePath.add(w, r.rows_per_s);
        ctx.progress(`round ${round + 1} ${w}: ${Math.round(r.rows_per_s)} rows/s (single-row commits)`);
        if (!missing) {
          const p = await runWorker(ctx, WRITE_PATH_WORKER);
          writePath.add('project', p.rows_per_s);
          ctx.progress(`round ${round + 1} project write path: ${Math.round(p.rows_per_s)} rows/s (${sizes.writeClients} writers, group commit)`);
        }
        return;
      }
      const dbFile = w === CEILING ? undefined : path.join(w === 'project' ? world.projectDir : world.peerDir, DB_FILE);
      const t = await world.start(w, DELAY_MS);
      let load: StreamLoad | undefined;
      try {
        load = await StreamLoad.open(tools, {
          protocol: 'ws', base: t.url, token: world.tokenFor(w), nft: world.nft, message: CHAT_MESSAGE, clients: sizes.writeClients,
          expected: world.chunks, delayMs: DELAY_MS, offsetMs: world.offsetMs(w, DELAY_MS), loop: true,
        });
        await load.stream();
        await sleep(sizes.warmSec * 1000);
        const id0 = dbFile ? lastMessageId(dbFile) : 0;
        const t0 = performance.now();
        load.mark();
        await sleep(sizes.windowSec * 1000);
        const id1 = dbFile ? lastMessageId(dbFile) : 0;
        const secs = (performance.now() - t0) / 1000;
        const win = await load.report();
        if (win.errors) throw new Error(`${w}: ${win.errors} stream errors (${win.firstError})`);
        turns.add(w, win.turns / secs);
        if (dbFile) rate.add(w, (id1 - id0) / secs);
        ctx.progress(`round ${round + 1} ${w}: ${dbFile ? `${Math.round((id1 - id0) / secs)} messages/s persisted, ` : ''}${Math.round(win.turns / secs)} turns/s over ${sizes.writeClients} streams`);
      } finally {
        await load?.close();
        await t.stop();
      }
    });
    const note = joinNotes(missing ? `${NA_MISSING}: ${missing}` : undefined, failed);
    return [
      summarize({ name: this.name, metric: 'messages_per_s', unit: 'rows/s', better: 'higher', note }, rate, PEERS),
      summarize({ name: this.name, metric: 'turns_per_s', unit: `turns/s over ${sizes.writeClients} streams`, better: 'higher', note }, turns, ['fastify', CEILING]),
      summarize({ name: this.name, metric: 'write_path', unit: 'rows/s', better: 'higher', note }, writePath, ['sqlite-raw']),
    ];
  },
};
