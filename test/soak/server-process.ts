import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from '../helpers/server.js';

/**
 * One real `panthers serve` process on an ephemeral port, started on a given data dir, killed
 * with SIGKILL by the soak. It remembers whether an exit was ours, so an exit we did not cause
 * (a crash, an unhandled rejection, a fatal log) is reported as a violation.
 */
export class ServerProcess {
  readonly child: ChildProcess;
  url = '';
  /** ms from spawn to the first 200 from /health */
  toHealthMs = 0;
  private out = '';
  private killedByUs = false;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<void>;

  private constructor(env: Record<string, string>, private readonly onUnexpectedExit: (why: string) => void) {
    this.child = spawn(process.execPath, [CLI, 'serve'], {
      env: { ...process.env, LOG_LEVEL: 'warn', ...env, PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      // Keep the tail only: the soak runs for minutes.
      this.out = (this.out + d.toString()).slice(-20_000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        if (!this.killedByUs) this.onUnexpectedExit(`server exited by itself (code ${code}, signal ${signal}); output tail:\n${this.out.slice(-3000)}`);
        resolve();
      });
    });
  }

  /** Spawns the server and resolves once /health answers 200 (or throws past `boundMs`). */
  static async start(env: Record<string, string>, boundMs: number, onUnexpectedExit: (why: string) => void): Promise<ServerProcess> {
    const t0 = performance.now();
    const p = new ServerProcess({ ...env, LOG_LEVEL: 'info' }, onUnexpectedExit);
    const deadline = t0 + boundMs;
    // The port is in the "listening" line (PORT=0).
    while (!p.url) {
      const m = /"msg":"listening"[^\n]*"port":(\d+)|"port":(\d+)[^\n]*"msg":"listening"/.exec(p.out);
      if (m) p.url = `http://127.0.0.1:${m[1] ?? m[2]}`;
      else if (p.exitInfo) throw new Error(`server exited during start-up:\n${p.out.slice(-3000)}`);
      else if (performance.now() > deadline) {
        p.kill();
        throw new Error(`server did not listen within ${boundMs} ms:\n${p.out.slice(-3000)}`);
      } else await new Promise((r) => setTimeout(r, 2));
    }
    for (;;) {
      try {
        const r = await fetch(p.url + '/health', { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status === 200) break;
      } catch {
        /* not yet */
      }
      if (performance.now() > deadline) {
        p.kill();
        throw new Error(`/health not 200 within ${boundMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    p.toHealthMs = performance.now() - t0;
    return p;
  }

  /** kill -9, awaited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.killedByUs = true;
    if (!this.exitInfo) this.child.kill(signal);
    await this.exited;
    return this.exitInfo!;
  }

  /** SIGSTOP for `ms`, then SIGCONT: the process stands still (a stalled event loop, a paused VM). */
  async pause(ms: number): Promise<void> {
    if (this.exitInfo) return;
    this.child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, ms));
    if (!this.exitInfo) this.child.kill('SIGCONT');
  }

  get alive(): boolean {
    return !this.exitInfo;
  }

  output(): string {
    return this.out;
  }
}
