import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { Tools } from './tools.js';

/** A child process the harness started (server under test or load worker), optionally pinned to one CPU. */
export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** Resolves with the first match of re in stdout/stderr (rejects on exit or timeout). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM, then SIGKILL after graceMs. Resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: Promise<number | null>;
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** pin to this CPU with taskset (ignored when taskset is missing) */
  cpu?: number;
  /** keep at most this much output (a chatty server must not fill the harness's memory) */
  keepOutput?: number;
  /** stdin as an IPC channel (for forked node workers) */
  ipc?: boolean;
}

/** Every child still running, so an interrupted run (Ctrl-C, SIGTERM) leaves no server behind. */
const running = new Set<ChildProcess>();

export function killAllChildren(): void {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
}

export function spawnProc(tools: Tools, cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const pinned = opts.cpu !== undefined && tools.taskset;
  // taskset execs the command: the pid we get is the command's own.
  const file = pinned ? tools.taskset! : cmd;
  const argv = pinned ? ['-c', String(opts.cpu), cmd, ...args] : args;
  const child = spawn(file, argv, {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.on('exit', () => running.delete(child));
  const keep = opts.keepOutput ?? 64 * 1024;
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > keep) out = out.slice(out.length - keep);
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      for (const w of waiters) w();
      r(exitCode);
    }),
  );
  child.on('error', (e) => {
    out += `\n[spawn error] ${e.message}`;
    exitCode = -2;
    for (const w of waiters) w();
  });
  return {
    child,
    get pid() {
      return child.pid ?? -1;
    },
    output: () => out,
    exited,
    waitFor(re, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) return done(() => resolve(m));
          if (exitCode !== undefined) return done(() => reject(new Error(`${cmd} exited (${exitCode}) before ${re}:\n${out.slice(-2000)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`${cmd} did not print ${re} within ${timeoutMs} ms:\n${out.slice(-2000)}`))), timeoutMs);
        const done = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(graceMs = 3000) {
      if (exitCode !== undefined) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** User + system CPU seconds a process has used so far (Linux /proc), NaN elsewhere. */
export function cpuSeconds(pid: number, clockTicks: number, thread?: number): number {
  try {
    // /proc/PID/task/PID/stat is the main thread alone (Node's worker threads have their own tids).
    const stat = fs.readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clockTicks;
  } catch {
    return NaN;
  }
}

/** Resident set size in MB (Linux /proc), NaN elsewhere. */
export function rssMb(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Measures a process's CPU use (% of one core) over an interval: start() then stop(). */
export class CpuMeter {
  private t0 = 0;
  private c0 = 0;
  private m0 = 0;
  /** the main thread's share of the last window, % of one core (the rest is worker and helper threads) */
  mainPct = NaN;
  constructor(private readonly pid: number, private readonly clockTicks: number) {}
  start(): void {
    this.t0 = performance.now();
    this.c0 = cpuSeconds(this.pid, this.clockTicks);
    this.m0 = cpuSeconds(this.pid, this.clockTicks, this.pid);
  }
  /** % of one core since start(), all threads. */
  stop(): number {
    const c1 = cpuSeconds(this.pid, this.clockTicks);
    const m1 = cpuSeconds(this.pid, this.clockTicks, this.pid);
    const wall = (performance.now() - this.t0) / 1000;
    this.mainPct = ((m1 - this.m0) / wall) * 100;
    return ((c1 - this.c0) / wall) * 100;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
