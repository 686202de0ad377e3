import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnProc, type Proc } from './proc.js';
import { LatencyHistogram } from './stats.js';
import type { Tools } from './tools.js';
import type { Command, WindowReport, WorkerConfig, WorkerEvent } from './stream-worker.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'stream-worker.js');

/** The merged figures of one measurement window over all workers. */
export interface StreamWindow {
  open: number;
  active: number;
  chunks: number;
  chunksPerSec: number;
  turns: number;
  outOfOrder: number;
  shortTurns: number;
  errors: number;
  firstError?: string;
  p50LateMs: number;
  p99LateMs: number;
  /** load generator CPU, % of one core (all workers) */
  loadCpuPct: number;
}

interface Worker {
  proc: Proc;
  next(ev: WorkerEvent['ev'], timeoutMs: number): Promise<WorkerEvent>;
  send(c: Command): void;
}

function startWorker(tools: Tools): Worker {
  const proc = spawnProc(tools, process.execPath, [WORKER], { cpu: tools.loadCpu, ipc: true });
  const queue: WorkerEvent[] = [];
  const waiting: ((e: WorkerEvent) => void)[] = [];
  proc.child.on('message', (e: WorkerEvent) => {
    const w = waiting.shift();
    if (w) w(e);
    else queue.push(e);
  });
  return {
    proc,
    send: (c) => {
      if (proc.child.connected) proc.child.send(c);
    },
    next(ev, timeoutMs) {
      const got = queue.shift();
      const p = got
        ? Promise.resolve(got)
        : new Promise<WorkerEvent>((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`load worker: no ${ev} within ${timeoutMs} ms\n${proc.output().slice(-1500)}`)), timeoutMs);
            waiting.push((e) => {
              clearTimeout(t);
              resolve(e);
            });
            proc.exited.then((code) => {
              clearTimeout(t);
              reject(new Error(`load worker exited (${code}) waiting for ${ev}\n${proc.output().slice(-1500)}`));
            });
          });
      return p.then((e) => {
        if (e.ev !== ev) throw new Error(`load worker: expected ${ev}, got ${e.ev}`);
        return e;
      });
    },
  };
}

/**
 * Streaming load from worker processes on the load CPU: `clients` connections split over as
 * many workers as keep each under perWorker connections.
 */
export class StreamLoad {
  private constructor(private readonly workers: Worker[], readonly opened: number, readonly failed: number, readonly firstError?: string) {}

  static async open(tools: Tools, config: WorkerConfig, perWorker = 5000): Promise<StreamLoad> {
    const n = Math.max(1, Math.ceil(config.clients / perWorker));
    const workers = Array.from({ length: n }, () => startWorker(tools));
    let ok = 0;
    let failed = 0;
    let firstError: string | undefined;
    try {
      const shares = workers.map((_, i) => Math.floor(config.clients / n) + (i < config.clients % n ? 1 : 0));
      workers.forEach((w, i) => w.send({ cmd: 'open', config: { ...config, clients: shares[i]! } }));
      for (const w of workers) {
        const e = await w.next('opened', 120_000);
        if (e.ev === 'opened') {
          ok += e.ok;
          failed += e.failed;
          firstError ??= e.firstError;
        }
      }
    } catch (e) {
      await Promise.all(workers.map((w) => w.proc.stop(200)));
      throw e;
    }
    return new StreamLoad(workers, ok, failed, firstError);
  }

  async stream(): Promise<void> {
    for (const w of this.workers) w.send({ cmd: 'stream' });
    for (const w of this.workers) await w.next('streaming', 10_000);
  }

  mark(): void {
    for (const w of this.workers) w.send({ cmd: 'mark' });
  }

  async report(): Promise<StreamWindow> {
    for (const w of this.workers) w.send({ cmd: 'report' });
    const reports: WindowReport[] = [];
    for (const w of this.workers) {
      const e = await w.next('report', 30_000);
      if (e.ev === 'report') reports.push(e.report);
    }
    const h = new LatencyHistogram();
    for (const r of reports) h.merge(LatencyHistogram.fromSparse(r.latency));
    const sum = (f: (r: WindowReport) => number) => reports.reduce((a, r) => a + f(r), 0);
    const windowMs = Math.max(...reports.map((r) => r.windowMs));
    return {
      open: sum((r) => r.open),
      active: sum((r) => r.active),
      chunks: sum((r) => r.chunks),
      chunksPerSec: sum((r) => r.chunks) / (windowMs / 1000),
      turns: sum((r) => r.turns),
      outOfOrder: sum((r) => r.outOfOrder),
      shortTurns: sum((r) => r.shortTurns),
      errors: sum((r) => r.errors),
      firstError: reports.find((r) => r.firstError)?.firstError,
      p50LateMs: h.quantile(0.5),
      p99LateMs: h.quantile(0.99),
      loadCpuPct: (sum((r) => r.cpuMs) / windowMs) * 100,
    };
  }

  async close(): Promise<void> {
    for (const w of this.workers) w.send({ cmd: 'close' });
    await Promise.all(
      this.workers.map((w) => Promise.race([w.proc.exited, new Promise((r) => setTimeout(r, 3000))]).then(() => w.proc.stop(200))),
    );
  }
}
