import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { createApp, type App, type AppOptions } from '../../src/app.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(ROOT, 'dist/bin/panthers.js');

export function tempDir(prefix = 'panthers-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface HttpResult {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  token?: string;
  headers?: Record<string, string>;
  /** raw body text (sent as is) */
  raw?: string | Buffer;
}

export async function request(base: string, method: string, urlPath: string, opts: RequestOptions = {}): Promise<HttpResult> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let body: string | Buffer | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await fetch(base + urlPath, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Collects log lines written by the server under test (to assert on them). */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const l of chunk.toString('utf8').split('\n')) if (l) this.lines.push(l);
    cb();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export interface TestServer {
  app: App;
  url: string;
  port: number;
  dataDir: string;
  logs: LogCapture;
  request(method: string, urlPath: string, opts?: RequestOptions): Promise<HttpResult>;
  stop(): Promise<void>;
}

/** Starts the real server in this process on 127.0.0.1 with an ephemeral port and a temp data dir. */
export async function startServer(env: Record<string, string> = {}, opts: AppOptions = {}, dataDir = tempDir()): Promise<TestServer> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    PANTHERS_DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    PANTHERS_RATE_LIMITS: 'off',
    PANTHERS_SCRIPTED_DELAY_MS: '0',
    // Load shedding is tested on its own (guarantees-overload); elsewhere a busy test machine
    // (parallel test files, a browser, a soak) must not turn requests into 503 "overloaded".
    PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '10000',
    ...env,
  });
  const logs = new LogCapture();
  const app = await createApp(config, { logDestination: logs, ...opts });
  const port = await app.start();
  const url = `http://127.0.0.1:${port}`;
  return {
    app, url, port, dataDir, logs,
    request: (m, p, o) => request(url, m, p, o),
    stop: () => app.stop(),
  };
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  port: number;
  output: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts `panthers serve` (or another subcommand) as a real child process and waits for it to listen. */
export async function spawnCli(args: string[], env: Record<string, string>, waitFor: RegExp = /"msg":"listening"/): Promise<ServerProcess> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', PANTHERS_SCRIPTED_DELAY_MS: '0', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '10000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 15_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (waitFor.test(out)) {
        clearTimeout(timer);
        const m = /"port":(\d+)/.exec(out);
        resolve(m ? Number(m[1]) : 0);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  return { child, port, url: `http://127.0.0.1:${port}`, output: () => out, exited };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until fn returns a truthy value or the time runs out. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, stepMs = 20): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T;
  do {
    last = await fn();
    if (last) return last;
    await sleep(stepMs);
  } while (Date.now() < until);
  throw new Error(`condition not met within ${timeoutMs} ms (last value: ${JSON.stringify(last)})`);
}
