import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median, medianRatio } from './stats.js';

/** One row of the report: a metric of a scenario, the project's figure and each peer's. */
export interface MetricResult {
  name: string;
  metric: string;
  unit: string;
  /** The project's median; null when it could not be measured (see note). */
  project: number | null;
  peers: Record<string, number | null>;
  /** Median of the per-round ratios project/peer (only for throughput and cost figures). */
  ratios: Record<string, number>;
  /** 'higher' or 'lower' is better: how to read the ratio. */
  better: 'higher' | 'lower';
  /** Why a figure is missing, or what bounded it ("n/a (endpoint missing)", "load generator saturated"). */
  note?: string;
  /** The per-round figures the medians came from (interleaved rounds). */
  rounds?: { project: number[]; peers: Record<string, number[]> };
}

export interface BenchReport {
  machine: { hostname: string; cpus: number; cpu_model: string; memory_gb: number; kernel: string; pinned: boolean; wrk: boolean };
  node: string;
  started_at: string;
  finished_at?: string;
  mode: 'full' | 'quick';
  scenarios: MetricResult[];
}

export const NA_MISSING = 'n/a (endpoint missing)';

/** Per-round samples of one metric for the project and each peer. */
export class Samples {
  readonly project: number[] = [];
  readonly peers = new Map<string, number[]>();

  add(who: string, v: number): void {
    if (who === 'project') this.project.push(v);
    else {
      const l = this.peers.get(who) ?? [];
      l.push(v);
      this.peers.set(who, l);
    }
  }
}

export interface ResultMeta {
  name: string;
  metric: string;
  unit: string;
  better: 'higher' | 'lower';
  /** false for p99-style figures: too noisy to compare as a ratio, reported only. */
  ratio?: boolean;
  note?: string;
}

/** Medians of each side and the median of per-round ratios. */
export function summarize(meta: ResultMeta, s: Samples, peerNames: readonly string[]): MetricResult {
  const peers: Record<string, number | null> = {};
  const ratios: Record<string, number> = {};
  const roundsPeers: Record<string, number[]> = {};
  const proj = s.project.length ? median(s.project) : NaN;
  for (const p of peerNames) {
    const xs = s.peers.get(p) ?? [];
    roundsPeers[p] = xs.map(round4);
    const m = xs.length ? median(xs) : NaN;
    peers[p] = Number.isFinite(m) ? round4(m) : null;
    if (meta.ratio !== false && s.project.length && xs.length) {
      const r = medianRatio(s.project, xs);
      if (Number.isFinite(r)) ratios[p] = round4(r);
    }
  }
  const out: MetricResult = {
    name: meta.name,
    metric: meta.metric,
    unit: meta.unit,
    project: Number.isFinite(proj) ? round4(proj) : null,
    peers,
    ratios,
    better: meta.better,
    rounds: { project: s.project.map(round4), peers: roundsPeers },
  };
  if (meta.note) out.note = meta.note;
  return out;
}

export function round4(x: number): number {
  if (!Number.isFinite(x)) return x;
  const a = Math.abs(x);
  const digits = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : 4;
  return Number(x.toFixed(digits));
}

export function machineInfo(pinned: boolean, wrk: boolean): BenchReport['machine'] {
  let kernel = os.release();
  try {
    kernel = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux: os.release() is what there is
  }
  return {
    hostname: os.hostname(),
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    memory_gb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel,
    pinned,
    wrk,
  };
}

export function writeReport(file: string, report: BenchReport): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
}
