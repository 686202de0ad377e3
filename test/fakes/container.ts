import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT } from '../helpers/server.js';

/**
 * Runs the agent the way its image does, without Docker: the final stage of the repository's
 * Dockerfile is read (ENV, WORKDIR, CMD), so a test breaks when the Dockerfile drifts. The
 * image's /app is this checkout (its package.json, node_modules and dist are what the image
 * copies). Only what a container runtime itself provides is translated:
 *   - port mapping: PORT is bound to an ephemeral port on 127.0.0.1 (HOST: the container's
 *     network namespace is the loopback interface here);
 *   - volumes: an env value naming a path under a mount point is rewritten to the host dir;
 *     a data dir with no volume lives in the container's writable layer (deleted on stop).
 * No host environment leaks in: the process gets exactly image ENV + the deploy's env. Like the
 * image, it starts as the current user; started as root it drops to PANTHERS_RUN_AS itself,
 * after taking ownership of a (root-created) volume, as on Akash.
 */

export interface ImageConfig {
  env: Record<string, string>;
  workdir: string;
  cmd: string[];
  user?: string;
  expose: number[];
}

const DOCKERFILE = path.join(ROOT, 'Dockerfile');

/** ENV/WORKDIR/CMD/USER/EXPOSE of the Dockerfile's last stage (the image that runs). */
export function readDockerfile(file = DOCKERFILE): ImageConfig {
  const text = fs.readFileSync(file, 'utf8');
  // Join continuation lines, drop comments.
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  let img: ImageConfig = { env: {}, workdir: '/', cmd: [], expose: [] };
  for (const line of lines) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, instr, rest] = [m[0], m[1]!.toUpperCase(), m[2]!];
    if (instr === 'FROM') img = { env: {}, workdir: '/', cmd: [], expose: [] };
    else if (instr === 'ENV') Object.assign(img.env, parseEnvInstruction(rest));
    else if (instr === 'WORKDIR') img.workdir = path.posix.resolve(img.workdir, rest);
    else if (instr === 'USER') img.user = rest;
    else if (instr === 'EXPOSE') img.expose.push(...rest.split(/\s+/).map((p) => Number(p.split('/')[0])));
    else if (instr === 'CMD') img.cmd = rest.startsWith('[') ? JSON.parse(rest) : ['/bin/sh', '-c', rest];
  }
  return img;
}

/** `ENV A=1 B="two words"` (and the legacy `ENV A value`). */
function parseEnvInstruction(rest: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(rest)) {
    const [k, ...v] = rest.split(/\s+/);
    out[k!] = v.join(' ');
    return out;
  }
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (const m of rest.matchAll(re)) {
    let v = m[2]!;
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    else if (v.startsWith("'")) v = v.slice(1, -1);
    out[m[1]!] = v;
  }
  return out;
}

export interface ContainerSpec {
  /** the env the provider was told to give the container (SDL env, compose environment) */
  env: Record<string, string>;
  /** container path -> host directory (a volume) */
  mounts?: Record<string, string>;
  /** the port the container serves (default: the image's EXPOSE) */
  containerPort?: number;
  /** extra lines of output are kept here for failure messages */
  name?: string;
}

export interface RunningContainer {
  /** the host port the container port is mapped to */
  port: number;
  url: string;
  child: ChildProcess;
  /** the environment the process really got (after the runtime's translations) */
  env: Record<string, string>;
  output(): string;
  exited: Promise<number | null>;
  running(): boolean;
  stop(): Promise<void>;
}

/** Starts the image's CMD with image ENV + spec env; resolves once the agent listens. */
/**
 * In the image, /app is readable by the unprivileged user the agent drops to; a checkout under a
 * private directory (`mktemp -d` is 0700, as in CI) is not. Like the image, let others traverse
 * the checkout's ancestors (execute only, no listing), or the dropped agent cannot load its code.
 */
function imageFilesReadable(): void {
  if (process.getuid?.() !== 0) return;
  for (let dir = ROOT; ; dir = path.dirname(dir)) {
    const mode = fs.statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) fs.chmodSync(dir, mode | 0o001);
    if (path.dirname(dir) === dir) break;
  }
}

export async function runContainer(spec: ContainerSpec, image = readDockerfile()): Promise<RunningContainer> {
  imageFilesReadable();
  const mounts = { ...(spec.mounts ?? {}) };
  const env: Record<string, string> = { ...image.env, ...spec.env };
  // The container's writable layer: what is not on a volume is gone when it stops.
  const layer = fs.mkdtempSync(path.join(os.tmpdir(), 'panthers-container-'));
  // Traversable by the image's unprivileged user (the agent drops to it when started as root).
  fs.chmodSync(layer, 0o755);
  const dataDir = env.PANTHERS_DATA_DIR;
  if (dataDir && !Object.keys(mounts).some((m) => dataDir === m || dataDir.startsWith(m + '/'))) {
    mounts[dataDir] = path.join(layer, dataDir);
  }
  for (const [k, v] of Object.entries(env)) env[k] = mapPath(v, mounts);
  for (const dir of Object.values(mounts)) fs.mkdirSync(dir, { recursive: true });
  // Port mapping and network namespace (see the header).
  env.PORT = '0';
  env.HOST = '127.0.0.1';
  const [cmd, ...args] = image.cmd;
  if (cmd !== 'node') throw new Error(`the image's CMD starts "${cmd}", this runner knows how to start node only`);
  const cwd = image.workdir === '/app' ? ROOT : (() => { throw new Error(`unexpected WORKDIR ${image.workdir}`); })();
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let alive = true;
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => {
    alive = false;
    fs.rmSync(layer, { recursive: true, force: true });
    r(code);
  }));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${spec.name ?? 'container'} did not start:\n${out}`)), 20_000);
    const onData = (d: Buffer) => {
      out = (out + d.toString()).slice(-20_000);
      const line = out.split('\n').find((l) => l.includes('"msg":"listening"'));
      if (line) {
        const p = /"port":(\d+)/.exec(line);
        if (p) {
          clearTimeout(timer);
          resolve(Number(p[1]));
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${spec.name ?? 'container'} exited with ${code}:\n${out}`));
    });
  });
  return {
    port, url: `http://127.0.0.1:${port}`, child, env,
    output: () => out,
    exited,
    running: () => alive,
    async stop() {
      if (!alive) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

function mapPath(value: string, mounts: Record<string, string>): string {
  for (const [inside, host] of Object.entries(mounts)) {
    if (value === inside) return host;
    if (value.startsWith(inside + '/')) return host + value.slice(inside.length);
  }
  return value;
}
