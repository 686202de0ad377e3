import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, spawnProc, type Proc } from './proc.js';
import type { Tools } from './tools.js';

/** dist/ of this build (bench/lib/servers.js lives at dist/bench/lib). */
export const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(DIST, 'bin/panthers.js');
export const PEERS_DIR = path.join(DIST, 'bench/peers');

export type PeerName = 'uws-raw' | 'uws-sqlite' | 'fastify' | 'socketio' | 'express-socketio';

/** A server under test, started as its own process pinned to the server CPU. */
export interface Target {
  /** 'project' or a peer name */
  readonly who: string;
  readonly url: string;
  readonly port: number;
  readonly proc: Proc;
  stop(): Promise<void>;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const LISTENING = /"msg":"listening".*?"port":(\d+)/;

export interface ProjectOptions {
  dataDir: string;
  delayMs: number;
  env?: Record<string, string>;
  /** node flags before the script (e.g. --cpu-prof) */
  nodeArgs?: string[];
  /** another build's bin/panthers.js (--before: the same project at another commit) */
  cli?: string;
  who?: string;
}

/** `node dist/bin/panthers.js serve` with the scripted model, rate limits off, on an ephemeral port. */
export async function startProject(tools: Tools, o: ProjectOptions): Promise<Target> {
  // LOG_LEVEL=warn hides the "listening" line (info): pick the port here and poll /health instead.
  const port = await freePort();
  const proc = spawnProc(tools, process.execPath, [...(o.nodeArgs ?? []), o.cli ?? CLI, 'serve'], {
    cpu: tools.serverCpu,
    env: {
      PORT: String(port),
      HOST: '127.0.0.1',
      PANTHERS_DATA_DIR: o.dataDir,
      LOG_LEVEL: 'warn',
      PANTHERS_RATE_LIMITS: 'off',
      PANTHERS_MODEL: 'scripted',
      PANTHERS_SCRIPTED_DELAY_MS: String(o.delayMs),
      // The benchmark drives thousands of concurrent turns: lift the per-process chat bound.
      PANTHERS_CHAT_CONCURRENCY: '100000',
      // ...and all its clients are one wallet on one address: lift the socket caps.
      PANTHERS_WS_MAX_PER_WALLET: '1000000',
      PANTHERS_WS_MAX_PER_IP: '1000000',
      PANTHERS_ENV: 'development',
      ...o.env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await untilHealthy(url, proc);
  } catch (e) {
    await proc.stop(500);
    throw e;
  }
  // A profiled process writes its profile on exit: wait for that rather than kill it.
  const profiled = isProfiled(o.nodeArgs);
  return { who: o.who ?? 'project', url, port, proc, stop: () => stopServer(proc, port, profiled ? 15_000 : 3000, profiled) };
}

/**
 * SIGTERM, then wait for the process to exit; once its port refuses connections its shutdown
 * is done but for lingering timers, so after a short grace it is killed rather than waited on.
 */
export async function stopServer(proc: Proc, port: number, graceMs = 3000, awaitExit = false): Promise<void> {
  proc.child.kill('SIGTERM');
  const until = performance.now() + graceMs;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  while (!exited && performance.now() < until) {
    if (!(await accepts(port))) {
      await Promise.race([proc.exited, sleep(awaitExit ? Math.max(0, until - performance.now()) : 300)]);
      break;
    }
    await sleep(20);
  }
  await proc.stop(0);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls GET /health every 2 ms until a 200; resolves with performance.now() of that answer. */
export async function untilHealthy(url: string, proc: Proc, timeoutMs = 20_000): Promise<number> {
  const until = performance.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  while (performance.now() < until && !exited) {
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      if (r.status === 200) return performance.now();
    } catch {
      // not listening yet
    }
    await sleep(2);
  }
  throw new Error(`no 200 from ${url}/health (${exited ? 'the process exited' : `within ${timeoutMs} ms`}):\n${proc.output().slice(-1500)}`);
}

export interface PeerOptions {
  delayMs: number;
  /** node flags before the script (e.g. --cpu-prof) */
  nodeArgs?: string[];
  dataDir?: string;
  chunksFile?: string;
  jwkFile?: string;
  deploymentFile?: string;
}

export async function startPeer(tools: Tools, name: PeerName, o: PeerOptions): Promise<Target> {
  const proc = spawnProc(tools, process.execPath, [...(o.nodeArgs ?? []), path.join(PEERS_DIR, `${name}.js`)], {
    cpu: tools.serverCpu,
    env: {
      PORT: '0',
      BENCH_DELAY_MS: String(o.delayMs),
      BENCH_DATA_DIR: o.dataDir,
      BENCH_CHUNKS_FILE: o.chunksFile,
      BENCH_JWK_FILE: o.jwkFile,
      BENCH_DEPLOYMENT_FILE: o.deploymentFile,
    },
  });
  return finishStart(name, proc, isProfiled(o.nodeArgs));
}

/** A process run under --cpu-prof writes its profile as it exits: its stop waits for that. */
function isProfiled(nodeArgs: string[] | undefined): boolean {
  return nodeArgs?.includes('--cpu-prof') ?? false;
}

async function finishStart(who: string, proc: Proc, profiled = false): Promise<Target> {
  let m: RegExpExecArray;
  try {
    m = await proc.waitFor(LISTENING, 20_000);
  } catch (e) {
    await proc.stop(500);
    throw e;
  }
  const port = Number(m[1]);
  const url = `http://127.0.0.1:${port}`;
  return { who, url, port, proc, stop: () => proc.stop(profiled ? 15_000 : 3000) };
}
