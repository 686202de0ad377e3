import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/** What the machine offers the harness: the load tools found and how CPUs are split. */
export interface Tools {
  wrk: string | undefined;
  taskset: string | undefined;
  /** CPU the server under test is pinned to, and the one the load generators run on. */
  serverCpu: number | undefined;
  loadCpu: number | undefined;
  /** Soft limit on open files of this process (children inherit it). */
  maxFiles: number;
  /** clock ticks per second for /proc/<pid>/stat CPU times */
  clockTicks: number;
}

function which(cmd: string): string | undefined {
  try {
    const p = execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return p || undefined;
  } catch {
    return undefined;
  }
}

function openFileLimit(): number {
  try {
    const limits = fs.readFileSync('/proc/self/limits', 'utf8');
    const m = /Max open files\s+(\d+|unlimited)/.exec(limits);
    if (m) return m[1] === 'unlimited' ? 1_000_000 : Number(m[1]);
  } catch {
    // not Linux
  }
  return 1024;
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

export function detectTools(): Tools {
  const wrk = which('wrk');
  const taskset = which('taskset');
  const cpus = os.cpus().length;
  // Two cores: the server gets one, the load the other. With one core there is nothing to split.
  const pin = Boolean(taskset) && cpus >= 2;
  return {
    wrk,
    taskset,
    serverCpu: pin ? 0 : undefined,
    loadCpu: pin ? 1 : undefined,
    maxFiles: openFileLimit(),
    clockTicks: clockTicks(),
  };
}

export const WRK_MISSING_HINT =
  'wrk not found: the HTTP throughput figures are skipped. Install it with `sudo apt-get install wrk` ' +
  '(Debian/Ubuntu), `brew install wrk` (macOS) or build it from its sources; then run the bench again.';
export const TASKSET_MISSING_HINT =
  'taskset not found (package util-linux) or fewer than 2 CPUs: server and load share the CPUs, so the figures mix both.';
