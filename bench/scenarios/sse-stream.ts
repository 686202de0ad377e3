import { NA_MISSING, Samples, summarize, type MetricResult } from '../lib/results.js';
import { joinNotes, rounds, type BenchContext, type Scenario } from '../lib/context.js';
import { streamStep, stepOk, usPerChunk } from './chat-fanout.js';

const PEERS = ['uws-raw', 'uws-sqlite', 'fastify', 'express-socketio'] as const;
const DELAY_MS = 50;

/** M concurrent SSE chat streams (POST /v1/agents/{nft}/chat) at 20 chunks/s each: server CPU and lateness. */
export const sseStream: Scenario = {
  name: 'sse_stream',
  needs: ['auth', 'deploy', 'chat_sse'],
  async run(ctx: BenchContext): Promise<MetricResult[]> {
    const { sizes, world } = ctx;
    const missing = world.missingFor(this.needs);
    const peers = [...PEERS, ...world.extraPeers];
    const who = [...(missing ? [] : ['project']), ...peers];
    const M = sizes.sseStreams;
    const cpu = new Samples();
    const cpuPerChunk = new Samples();
    const rate = new Samples();
    const late = new Samples();
    const notes = new Set<string>();
    const failed = await rounds(ctx, who, async (w, round) => {
      const s = await streamStep(ctx, w, 'sse', M, DELAY_MS, sizes.windowSec, sizes.streamWarmSec);
      cpu.add(w, s.cpuPct);
      cpuPerChunk.add(w, usPerChunk(s));
      rate.add(w, s.window.chunksPerSec);
      late.add(w, s.window.p99LateMs);
      if (!stepOk(s, M, DELAY_MS)) notes.add(`${w} missed the schedule (${s.window.firstError ?? `p99 ${s.window.p99LateMs.toFixed(0)} ms`})`);
      ctx.progress(`round ${round + 1} ${w} ${M} SSE streams: ${Math.round(s.window.chunksPerSec)} chunks/s, server CPU ${s.cpuPct.toFixed(0)}% (${usPerChunk(s).toFixed(1)} us/chunk), p99 late ${s.window.p99LateMs.toFixed(1)} ms`);
    });
    const na = joinNotes(missing ? `${NA_MISSING}: ${missing}` : undefined, failed);
    return [
      summarize({ name: this.name, metric: 'cpu_pct', unit: `% core @${M}x20/s`, better: 'lower', note: [na, ...notes].filter(Boolean).join('; ') || undefined }, cpu, peers),
      summarize({ name: this.name, metric: 'cpu_per_chunk', unit: 'us CPU/chunk', better: 'lower', note: na }, cpuPerChunk, peers),
      summarize({ name: this.name, metric: 'chunks_per_s', unit: 'chunks/s', better: 'higher', note: na }, rate, peers),
      summarize({ name: this.name, metric: 'p99_lateness', unit: 'ms', better: 'lower', ratio: false, note: na }, late, peers),
    ];
  },
};
