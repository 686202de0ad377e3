import path from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE } from '../../src/db/database.js';
import { NA_MISSING, Samples, summarize, type MetricResult } from '../lib/results.js';
import { sleep, spawnProc } from '../lib/proc.js';
import { PEERS_DIR } from '../lib/servers.js';
import { StreamLoad } from '../lib/stream-load.js';
import { CHAT_MESSAGE } from '../lib/world.js';
import { joinNotes, rounds, type BenchContext, type Scenario } from '../lib/context.js';

const PEERS = ['fastify', 'sqlite-raw'] as const;
const DELAY_MS = 1;

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
 */
export const sqliteWrites: Scenario = {
  name: 'sqlite_writes',
  needs: ['auth', 'deploy', 'chat_ws'],
  async run(ctx: BenchContext): Promise<MetricResult[]> {
    const { sizes, world, tools } = ctx;
    const missing = world.missingFor(this.needs);
    const who = [...(missing ? [] : ['project']), ...PEERS];
    const rate = new Samples();
    const failed = await rounds(ctx, who, async (w, round) => {
      if (w === 'sqlite-raw') {
        const p = spawnProc(tools, process.execPath, [path.join(PEERS_DIR, 'sqlite-raw.js')], { cpu: tools.serverCpu, env: { BENCH_SECONDS: String(sizes.windowSec) } });
        const code = await p.exited;
        if (code !== 0) throw new Error(`sqlite-raw exited ${code}: ${p.output().slice(-500)}`);
        const r = JSON.parse(p.output().trim().split('\n').pop()!) as { rows_per_s: number };
        rate.add(w, r.rows_per_s);
        ctx.progress(`round ${round + 1} ${w}: ${Math.round(r.rows_per_s)} rows/s (single-row commits)`);
        return;
      }
      const dbFile = path.join(w === 'project' ? world.projectDir : world.peerDir, DB_FILE);
      const t = await world.start(w, DELAY_MS);
      let load: StreamLoad | undefined;
      try {
        load = await StreamLoad.open(tools, {
          protocol: 'ws', base: t.url, token: world.tokenFor(w), nft: world.nft, message: CHAT_MESSAGE, clients: sizes.writeClients,
          expected: world.chunks, delayMs: DELAY_MS, offsetMs: world.offsetMs(w, DELAY_MS), loop: true,
        });
        await load.stream();
        await sleep(sizes.warmSec * 1000);
        const id0 = lastMessageId(dbFile);
        const t0 = performance.now();
        load.mark();
        await sleep(sizes.windowSec * 1000);
        const id1 = lastMessageId(dbFile);
        const secs = (performance.now() - t0) / 1000;
        const win = await load.report();
        if (win.errors) throw new Error(`${w}: ${win.errors} stream errors (${win.firstError})`);
        rate.add(w, (id1 - id0) / secs);
        ctx.progress(`round ${round + 1} ${w}: ${Math.round((id1 - id0) / secs)} messages/s persisted, ${Math.round(win.turns / secs)} turns/s over ${sizes.writeClients} streams`);
      } finally {
        await load?.close();
        await t.stop();
      }
    });
    const note = joinNotes(missing ? `${NA_MISSING}: ${missing}` : undefined, failed);
    return [summarize({ name: this.name, metric: 'messages_per_s', unit: 'rows/s', better: 'higher', note }, rate, PEERS)];
  },
};
