import { NA_MISSING, Samples, summarize, type MetricResult } from '../lib/results.js';
import { CpuMeter, rssMb, sleep } from '../lib/proc.js';
import { StreamLoad, type StreamWindow } from '../lib/stream-load.js';
import { CHAT_MESSAGE } from '../lib/world.js';
import { joinNotes, rounds, type BenchContext, type Scenario } from '../lib/context.js';
import type { Target } from '../lib/servers.js';

const PEERS = ['uws-raw', 'uws-sqlite', 'fastify', 'socketio', 'express-socketio'] as const;
/** A capacity step passes when p99 lateness stays under this and every chunk arrives in order. */
export const LATENESS_LIMIT_MS = 50;

interface StepResult {
  window: StreamWindow;
  cpuPct: number;
  rssMb: number;
  opened: number;
  failedOpen: number;
}

/** One measurement: start the target at a pace, open the clients, stream, warm up, measure a window. */
export async function streamStep(
  ctx: BenchContext,
  who: string,
  protocol: 'ws' | 'socketio' | 'sse',
  clients: number,
  delayMs: number,
  windowSec: number,
  warmSec: number,
): Promise<StepResult> {
  const { tools, world } = ctx;
  const target: Target = await world.start(who, delayMs);
  let load: StreamLoad | undefined;
  try {
    load = await StreamLoad.open(tools, {
      protocol, base: target.url, token: world.tokenFor(who), nft: world.nft, message: CHAT_MESSAGE, clients,
      expected: world.chunks, delayMs, offsetMs: world.offsetMs(who, delayMs), loop: true,
    });
    if (load.opened === 0) throw new Error(`${who}: no client could connect: ${load.firstError}`);
    await load.stream();
    await sleep(warmSec * 1000 + delayMs);
    const cpu = new CpuMeter(target.proc.pid, tools.clockTicks);
    load.mark();
    cpu.start();
    await sleep(windowSec * 1000);
    const window = await load.report();
    const cpuPct = cpu.stop();
    return { window, cpuPct, rssMb: rssMb(target.proc.pid), opened: load.opened, failedOpen: load.failed };
  } finally {
    await load?.close();
    await target.stop();
  }
}

/**
 * Server CPU per delivered chunk (microseconds): holds when other work on a shared machine
 * starves the server, which then delivers fewer chunks but pays the same for each.
 */
export function usPerChunk(s: StepResult): number {
  return s.window.chunksPerSec > 0 ? (s.cpuPct / 100 / s.window.chunksPerSec) * 1e6 : NaN;
}

export function stepOk(s: StepResult, clients: number, delayMs: number): boolean {
  const nominal = (clients * 1000) / delayMs;
  const w = s.window;
  return (
    s.failedOpen === 0 && w.errors === 0 && w.outOfOrder === 0 && w.shortTurns === 0 &&
    w.p99LateMs < LATENESS_LIMIT_MS && w.chunksPerSec >= 0.9 * nominal
  );
}

function describe(s: StepResult): string {
  const w = s.window;
  return `${Math.round(w.chunksPerSec)} chunks/s (${usPerChunk(s).toFixed(1)} us CPU/chunk), p50 late ${w.p50LateMs.toFixed(1)} ms, p99 late ${w.p99LateMs.toFixed(1)} ms, server CPU ${s.cpuPct.toFixed(0)}%, load CPU ${w.loadCpuPct.toFixed(0)}%` +
    (w.errors || w.outOfOrder || w.shortTurns ? `, errors ${w.errors} out-of-order ${w.outOfOrder} short ${w.shortTurns} (${w.firstError ?? ''})` : '');
}

/**
 * 1,000 WS clients each streaming chat turns: cpu_pct at 20 chunks/s per client, capacity by
 * stepping the pace until p99 lateness passes 50 ms, and connections held at a slow pace with RSS.
 */
export const chatFanout: Scenario = {
  name: 'chat_fanout',
  needs: ['auth', 'deploy', 'chat_ws'],
  async run(ctx: BenchContext): Promise<MetricResult[]> {
    const { sizes, world, tools } = ctx;
    const missing = world.missingFor(this.needs);
    const peers = [...PEERS, ...world.extraPeers];
    const who = [...(missing ? [] : ['project']), ...peers];
    // Socket.IO peers speak its protocol (the same events); the project and the rest plain WS.
    const protocolOf = (w: string) => (w.includes('socketio') ? 'socketio' : 'ws') as 'ws' | 'socketio';
    const C = sizes.fanoutClients;
    const cpu = new Samples();
    const cpuPerChunk = new Samples();
    const late = new Samples();
    const capacity = new Samples();
    const conns = new Samples();
    const rss = new Samples();
    const notes: string[] = [];
    const loadSaturated = new Set<string>();

    const failed = await rounds(ctx, who, async (w, round) => {
      // Capacity steps, slowest first; the first step (20 chunks/s per client) also gives cpu_pct.
      let best = 0;
      for (const [i, delay] of sizes.capacityDelays.entries()) {
        const s = await streamStep(ctx, w, protocolOf(w), C, delay, sizes.windowSec, sizes.streamWarmSec);
        const ok = stepOk(s, C, delay);
        ctx.progress(`round ${round + 1} ${w} ${C} clients @ ${Math.round(1000 / delay)}/s each: ${describe(s)}${ok ? '' : ' -> over the limit'}`);
        if (i === 0) {
          cpu.add(w, s.cpuPct);
          cpuPerChunk.add(w, usPerChunk(s));
          late.add(w, s.window.p99LateMs);
          if (!ok) notes.push(`${w} missed the schedule at 20 chunks/s per client`);
        }
        if (s.window.loadCpuPct > 90) loadSaturated.add(w);
        if (!ok) break;
        best = Math.max(best, s.window.chunksPerSec);
      }
      capacity.add(w, best);

      // Connections: as many streaming clients as the file limits allow, at a slow pace.
      const n = Math.min(sizes.connections, Math.max(100, tools.maxFiles - 500));
      const s = await streamStep(ctx, w, protocolOf(w), n, sizes.connectionsDelayMs, Math.max(sizes.windowSec, (2 * sizes.connectionsDelayMs) / 1000), sizes.warmSec);
      conns.add(w, s.window.active);
      rss.add(w, s.rssMb);
      ctx.progress(`round ${round + 1} ${w} ${n} connections: ${s.window.active} streaming, server RSS ${s.rssMb.toFixed(0)} MB${s.failedOpen ? `, ${s.failedOpen} failed to open` : ''}`);
    });

    const na = joinNotes(missing ? `${NA_MISSING}: ${missing}` : undefined, failed);
    const capNote = [na, loadSaturated.size ? `load generator CPU above 90% for ${[...loadSaturated].join(', ')}: capacity bounded by the client` : undefined]
      .filter(Boolean).join('; ') || undefined;
    const cpuNote = [na, ...new Set(notes)].filter(Boolean).join('; ') || undefined;
    return [
      summarize({ name: this.name, metric: 'cpu_pct', unit: `% core @${C}x20/s`, better: 'lower', note: cpuNote }, cpu, peers),
      summarize({ name: this.name, metric: 'cpu_per_chunk', unit: 'us CPU/chunk @20/s', better: 'lower', note: na }, cpuPerChunk, peers),
      summarize({ name: this.name, metric: 'p99_lateness', unit: 'ms', better: 'lower', ratio: false, note: na }, late, peers),
      summarize({ name: this.name, metric: 'capacity', unit: `chunks/s to ${C}`, better: 'higher', note: capNote }, capacity, peers),
      summarize({ name: this.name, metric: 'connections', unit: 'clients', better: 'higher', note: na }, conns, peers),
      summarize({ name: this.name, metric: 'connections_rss', unit: 'MB', better: 'lower', note: na }, rss, peers),
    ];
  },
};
