import { NA_MISSING, Samples, summarize, type MetricResult } from '../lib/results.js';
import { call } from '../lib/project-session.js';
import { CpuMeter } from '../lib/proc.js';
import { runWrk } from '../lib/wrk.js';
import { WRK_MISSING_HINT } from '../lib/tools.js';
import { joinNotes, rounds, type BenchContext, type Scenario } from '../lib/context.js';

const PEERS = ['uws-raw', 'uws-sqlite', 'fastify', 'express-socketio'] as const;

/** GET /v1/deployments/{nft} with a valid token under wrk: requests/s, p99 and server CPU. */
export const httpAuthGet: Scenario = {
  name: 'http_auth_get',
  needs: ['auth', 'deploy'],
  async run(ctx: BenchContext): Promise<MetricResult[]> {
    const { tools, sizes, world } = ctx;
    const missing = world.missingFor(this.needs);
    const peers = [...PEERS, ...world.extraPeers];
    const rps = new Samples();
    const p99 = new Samples();
    const cpuPerReq = new Samples();
    const cpuMainPerReq = new Samples();
    let note = missing ? `${NA_MISSING}: ${missing}` : undefined;
    if (!tools.wrk) {
      note = `skipped: ${WRK_MISSING_HINT}`;
    } else {
      const who = [...(missing ? [] : ['project']), ...peers];
      const failed = await rounds(ctx, who, async (w, round) => {
        const t = await world.start(w, 0);
        try {
          const token = world.tokenFor(w);
          const path = `/v1/deployments/${world.nft}`;
          // The figure counts only if the answer is the real one.
          const check = await call(t.url, 'GET', path, undefined, token);
          if (check.status !== 200) throw new Error(`${w}: GET ${path} answered ${check.status}: ${check.text.slice(0, 200)}`);
          const opts = { url: t.url + path, headers: { Authorization: `Bearer ${token}` }, connections: sizes.wrkConnections };
          // Warm the JIT first (skipped in --quick, where the figures only prove the harness works).
          if (!ctx.quick) await runWrk(tools, { ...opts, durationSec: Math.max(1, Math.round(sizes.warmSec)) });
          const cpu = new CpuMeter(t.proc.pid, tools.clockTicks);
          cpu.start();
          const r = await runWrk(tools, { ...opts, durationSec: Math.max(1, Math.round(sizes.windowSec)) });
          const cpuPct = cpu.stop();
          if (r.errors > 0) throw new Error(`${w}: ${r.errors} failed requests under load`);
          rps.add(w, r.requestsPerSec);
          p99.add(w, r.p99Ms);
          // CPU per request holds when the machine is shared: a server starved of its CPU by other
          // work serves fewer requests/s, but each still costs what it costs.
          const us = (cpuPct / 100 / r.requestsPerSec) * 1e6;
          cpuPerReq.add(w, us);
          // The main thread's part: the rest is the audit writer thread, GC helpers and libuv's pool.
          const mainUs = (cpu.mainPct / 100 / r.requestsPerSec) * 1e6;
          cpuMainPerReq.add(w, mainUs);
          ctx.progress(`round ${round + 1} ${w}: ${Math.round(r.requestsPerSec)} req/s, p99 ${r.p99Ms.toFixed(2)} ms, server CPU ${cpuPct.toFixed(0)}% (${us.toFixed(1)} us/request, main thread ${mainUs.toFixed(1)})`);
        } finally {
          await t.stop();
        }
      });
      note = joinNotes(note, failed);
    }
    return [
      summarize({ name: this.name, metric: 'requests_per_s', unit: 'req/s', better: 'higher', note }, rps, peers),
      summarize({ name: this.name, metric: 'p99', unit: 'ms', better: 'lower', ratio: false, note }, p99, peers),
      summarize({ name: this.name, metric: 'cpu_per_request', unit: 'us CPU/req', better: 'lower', note }, cpuPerReq, peers),
      summarize({ name: this.name, metric: 'cpu_per_request_main_thread', unit: 'us CPU/req', better: 'lower', note }, cpuMainPerReq, peers),
    ];
  },
};
