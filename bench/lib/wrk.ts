import { spawnProc } from './proc.js';
import type { Tools } from './tools.js';

export interface WrkResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** non-2xx/3xx responses plus socket errors */
  errors: number;
}

export interface WrkOptions {
  url: string;
  headers?: Record<string, string>;
  durationSec: number;
  connections: number;
  threads?: number;
}

/** Runs wrk on the load CPU against a URL and parses its report (`--latency` percentiles). */
export async function runWrk(tools: Tools, o: WrkOptions): Promise<WrkResult> {
  if (!tools.wrk) throw new Error('wrk is not installed');
  const args = ['-t', String(o.threads ?? 1), '-c', String(o.connections), '-d', `${o.durationSec}s`, '--latency', '--timeout', '5s'];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(o.url);
  const p = spawnProc(tools, tools.wrk, args, { cpu: tools.loadCpu });
  const code = await Promise.race([
    p.exited,
    new Promise<number>((r) => setTimeout(() => r(-9), (o.durationSec + 15) * 1000)),
  ]);
  if (code === -9) await p.stop(100);
  if (code !== 0) throw new Error(`wrk failed (${code}):\n${p.output()}`);
  return parseWrk(p.output());
}

/** Converts wrk's "1.23ms" / "850.00us" / "1.02s" into milliseconds. */
export function wrkTimeMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!rps) throw new Error(`cannot read wrk output:\n${out}`);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? Number(sock[1]) + Number(sock[3]) + Number(sock[4]) : 0;
  return {
    requestsPerSec: Number(rps[1]),
    p50Ms: p50 ? wrkTimeMs(p50[1]!) : NaN,
    p99Ms: p99 ? wrkTimeMs(p99[1]!) : NaN,
    requests: total ? Number(total[1]) : 0,
    errors: (non2xx ? Number(non2xx[1]) : 0) + sockErrors,
  };
}
