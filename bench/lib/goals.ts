import type { MetricResult } from './results.js';

/**
 * The goals of issue 15, per scenario metric: a ratio to a peer (project / peer, read with the
 * metric's `better`) or an absolute figure. The chart draws each as a line; `goalHolds` says
 * whether a run met it.
 */
export interface Goal {
  name: string;
  metric: string;
  /** against a peer's figure (factor x peer) or an absolute value in the metric's unit */
  peer?: string;
  factor?: number;
  absolute?: number;
  /** 'at least' (higher is better) or 'at most' */
  bound: 'min' | 'max';
  /** as written in docs/bench.md */
  label: string;
}

export const GOALS: readonly Goal[] = [
  { name: 'http_auth_get', metric: 'requests_per_s', peer: 'uws-raw', factor: 0.6, bound: 'min', label: '>= 0.6x uws-raw' },
  { name: 'http_auth_get', metric: 'requests_per_s', peer: 'fastify', factor: 2.5, bound: 'min', label: '>= 2.5x fastify' },
  // The same two goals as CPU per request (1 / 0.6 and 1 / 2.5): what holds on a shared machine.
  { name: 'http_auth_get', metric: 'cpu_per_request', peer: 'uws-raw', factor: 1 / 0.6, bound: 'max', label: '<= 1.67x uws-raw' },
  { name: 'http_auth_get', metric: 'cpu_per_request', peer: 'fastify', factor: 1 / 2.5, bound: 'max', label: '<= 0.4x fastify' },
  { name: 'chat_fanout', metric: 'cpu_pct', peer: 'uws-raw', factor: 1.3, bound: 'max', label: '<= 1.3x uws-raw' },
  { name: 'chat_fanout', metric: 'cpu_per_chunk', peer: 'uws-raw', factor: 1.3, bound: 'max', label: '<= 1.3x uws-raw' },
  { name: 'chat_fanout', metric: 'p99_lateness', absolute: 50, bound: 'max', label: '< 50 ms' },
  { name: 'chat_fanout', metric: 'capacity', peer: 'uws-raw', factor: 0.8, bound: 'min', label: '>= 0.8x uws-raw' },
  { name: 'chat_fanout', metric: 'capacity', peer: 'socketio', factor: 3, bound: 'min', label: '>= 3x socketio' },
  { name: 'chat_fanout', metric: 'connections_rss', peer: 'uws-raw', factor: 1.5, bound: 'max', label: '<= 1.5x uws-raw' },
  { name: 'sse_stream', metric: 'cpu_pct', peer: 'uws-raw', factor: 1.3, bound: 'max', label: '<= 1.3x uws-raw' },
  { name: 'sse_stream', metric: 'cpu_per_chunk', peer: 'uws-raw', factor: 1.3, bound: 'max', label: '<= 1.3x uws-raw' },
  { name: 'actors', metric: 'one_actor', absolute: 1_000_000, bound: 'min', label: '>= 1 M msg/s' },
  { name: 'actors', metric: 'heap_per_idle_actor', absolute: 1000, bound: 'max', label: '<= 1,000 B' },
  { name: 'sqlite_writes', metric: 'messages_per_s', peer: 'sqlite-raw', factor: 0.5, bound: 'min', label: '>= 0.5x sqlite-raw' },
  { name: 'cold_start', metric: 'start_to_first_200', peer: 'uws-raw', factor: 1.5, bound: 'max', label: '<= 1.5x uws-raw' },
];

export function goalsFor(r: Pick<MetricResult, 'name' | 'metric'>): Goal[] {
  return GOALS.filter((g) => g.name === r.name && g.metric === r.metric);
}

/** The goal's threshold in the metric's unit for this run (a peer goal moves with the peer). */
export function goalValue(g: Goal, r: MetricResult): number | undefined {
  if (g.absolute !== undefined) return g.absolute;
  const p = r.peers[g.peer!];
  return p === null || p === undefined ? undefined : p * g.factor!;
}

/** true / false when it can be judged; undefined when a figure is missing. */
export function goalHolds(g: Goal, r: MetricResult): boolean | undefined {
  if (r.project === null) return undefined;
  if (g.absolute !== undefined) return g.bound === 'min' ? r.project >= g.absolute : r.project <= g.absolute;
  // Peer goals are judged on the median of per-round ratios (the method), not on the medians.
  const ratio = r.ratios[g.peer!];
  if (ratio === undefined) return undefined;
  return g.bound === 'min' ? ratio >= g.factor! : ratio <= g.factor!;
}
