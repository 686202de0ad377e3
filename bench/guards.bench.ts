import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../src/config.js';
import { createApp, type App } from '../src/app.js';

/**
 * The cost of the API guarantees on the hot path: requests/s of the real server with rate
 * limiting + audit log ON vs OFF, measured with wrk on 127.0.0.1, interleaved A B A B, the
 * median ratio reported. A benchmark, not a test: it asserts nothing.
 *
 *   node dist/bench/guards.bench.js [--rounds=3] [--seconds=3] [--connections=50]
 *
 * ON: every request takes the limiter (one Map update; the limit is set high enough that no
 * request is refused, so we measure the counting, not the 429 path) and queues an audit row
 * (batched into SQLite every 200 ms, hash chain computed there, on the same event loop).
 * OFF: PANTHERS_RATE_LIMITS=off and no audit sink.
 */

function arg(name: string, dflt: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
}

const ROUNDS = arg('rounds', 3);
const SECONDS = arg('seconds', 3);
const CONNECTIONS = arg('connections', 50);
const ROUTES = ['/v1/health', '/v1'];

const sink = new Writable({ write: (_c, _e, cb) => cb() });

async function start(limiter: boolean, audit: boolean): Promise<{ app: App; url: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'panthers-bench-guards-'));
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, LOG_LEVEL: 'warn',
    PANTHERS_RATE_LIMITS: limiter ? 'auth=1000000000,deployment=1000000000,chat=1000000000,other=1000000000' : 'off',
    PANTHERS_AUDIT_RETENTION_DAYS: '0',
  });
  const app = await createApp(config, { logDestination: sink });
  // OFF: detach the audit sink the guarantees feature installed (bench only).
  if (!audit) (app.http as unknown as { deps: { audit?: unknown } }).deps.audit = undefined;
  const port = await app.start();
  return { app, url: `http://127.0.0.1:${port}` };
}

const run = promisify(execFile);

/** wrk's requests/s for one run (bounded by -d and a hard timeout). Async: the server is in this process. */
async function wrk(url: string): Promise<number> {
  const { stdout: out } = await run('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--timeout', '2s', url], {
    encoding: 'utf8', timeout: (SECONDS + 10) * 1000,
  });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`cannot read wrk output:\n${out}`);
  if (/Non-2xx/.test(out)) throw new Error(`non-2xx answers during the run:\n${out}`);
  return Number(m[1]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (e) {
    // wrk --version exits 1 but prints; only a missing binary is fatal.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      console.error('wrk is not installed (apt-get install wrk)');
      process.exitCode = 2;
      return;
    }
  }
  const on = await start(true, true);
  const off = await start(false, false);
  // For attribution: each guard alone, measured once per round on /v1 (the cheapest route).
  const limiterOnly = await start(true, false);
  const auditOnly = await start(false, true);
  try {
    for (const route of ROUTES) {
      // Warm-up (JIT, SQLite page cache) for both, not recorded.
      await wrk(on.url + route);
      await wrk(off.url + route);
      const ratios: number[] = [];
      const onRps: number[] = [];
      const offRps: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        // Alternate which goes first, so drift (thermal, other load) does not favour one side.
        const order = i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
        const r: Record<string, number> = {};
        for (const which of order) r[which] = await wrk((which === 'on' ? on : off).url + route);
        onRps.push(r.on!);
        offRps.push(r.off!);
        ratios.push(r.on! / r.off!);
        console.log(`${route} round ${i + 1}: on ${r.on!.toFixed(0)} req/s, off ${r.off!.toFixed(0)} req/s, ratio ${(r.on! / r.off!).toFixed(3)}`);
      }
      const ratio = median(ratios);
      console.log(
        `${route}: median on ${median(onRps).toFixed(0)} req/s, off ${median(offRps).toFixed(0)} req/s, ` +
          `median ratio ${ratio.toFixed(3)} (overhead ${((1 - ratio) * 100).toFixed(1)}%)`,
      );
    }
    const alone: Record<string, number[]> = { off: [], limiter: [], audit: [] };
    for (let i = 0; i < ROUNDS; i++) {
      alone.off!.push(await wrk(off.url + '/v1'));
      alone.limiter!.push(await wrk(limiterOnly.url + '/v1'));
      alone.audit!.push(await wrk(auditOnly.url + '/v1'));
    }
    const base = median(alone.off!);
    console.log(
      `/v1 attribution: off ${base.toFixed(0)} req/s, limiter only ${median(alone.limiter!).toFixed(0)} (${(median(alone.limiter!) / base).toFixed(3)}), ` +
        `audit only ${median(alone.audit!).toFixed(0)} (${(median(alone.audit!) / base).toFixed(3)})`,
    );
    const rows = (on.app.ctx.db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
    console.log(`audit rows written by the ON server: ${rows}`);
  } finally {
    for (const s of [on, off, limiterOnly, auditOnly]) await s.app.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
