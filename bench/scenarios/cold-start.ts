import fs from 'node:fs';
import path from 'node:path';
import { Samples, summarize, type MetricResult } from '../lib/results.js';
import { cpuSeconds, rssMb, sleep, spawnProc } from '../lib/proc.js';
import { CLI, freePort, PEERS_DIR, stopServer, tempDir, untilHealthy } from '../lib/servers.js';
import { joinNotes, rounds, type BenchContext, type Scenario } from '../lib/context.js';

const PEERS = ['uws-raw', 'fastify'] as const;

/**
 * Process start to the first 200 of /health (fresh data dir, as on a first start), then idle RSS.
 * `start_cpu` is the CPU time the server process used until that first 200: the same start's cost,
 * which holds when other work on the machine delays the wall-clock figure.
 */
export const coldStart: Scenario = {
  name: 'cold_start',
  needs: [],
  async run(ctx: BenchContext): Promise<MetricResult[]> {
    const { tools, world, sizes } = ctx;
    const startMs = new Samples();
    const idleRss = new Samples();
    const startCpu = new Samples();
    const failed = await rounds({ ...ctx, sizes: { ...sizes, rounds: sizes.coldStartRounds } }, ['project', ...PEERS], async (w, round) => {
      const dir = tempDir('panthers-cold-');
      const port = await freePort();
      const t0 = performance.now();
      const proc =
        w === 'project'
          ? spawnProc(tools, process.execPath, [CLI, 'serve'], {
              cpu: tools.serverCpu,
              env: { PORT: String(port), HOST: '127.0.0.1', PANTHERS_DATA_DIR: dir, LOG_LEVEL: 'warn', PANTHERS_RATE_LIMITS: 'off', PANTHERS_SCRIPTED_DELAY_MS: '0' },
            })
          : spawnProc(tools, process.execPath, [path.join(PEERS_DIR, `${w}.js`)], {
              cpu: tools.serverCpu,
              env: { PORT: String(port), BENCH_DATA_DIR: dir, BENCH_JWK_FILE: world.jwkFile, BENCH_CHUNKS_FILE: world.chunksFile, BENCH_DEPLOYMENT_FILE: world.deploymentFile },
            });
      try {
        const t1 = await untilHealthy(`http://127.0.0.1:${port}`, proc, 15_000);
        const cpuMs = cpuSeconds(proc.pid, tools.clockTicks) * 1000;
        await sleep(ctx.quick ? 300 : 1000);
        const rss = rssMb(proc.pid);
        startMs.add(w, t1 - t0);
        idleRss.add(w, rss);
        startCpu.add(w, cpuMs);
        ctx.progress(`round ${round + 1} ${w}: first 200 after ${(t1 - t0).toFixed(0)} ms (${cpuMs.toFixed(0)} ms CPU), idle RSS ${rss.toFixed(0)} MB`);
      } finally {
        await stopServer(proc, port);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
    const note = joinNotes(failed);
    return [
      summarize({ name: this.name, metric: 'start_to_first_200', unit: 'ms', better: 'lower', note }, startMs, PEERS),
      summarize({ name: this.name, metric: 'start_cpu', unit: 'ms CPU', better: 'lower', note }, startCpu, PEERS),
      summarize({ name: this.name, metric: 'idle_rss', unit: 'MB', better: 'lower', note }, idleRss, PEERS),
    ];
  },
};
