import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { tempDir } from './server.js';
import { freePort } from '../../bench/lib/servers.js';

/**
 * Real PostgreSQL 15 and NATS 2.9 servers for cluster tests, from Debian's packages (`.ci/run`
 * installs postgresql and nats-server), each in a temp dir on a free loopback port, as
 * shared/reference/cluster.md describes (initdb refuses root: it runs as the postgres user).
 */
const PG_BIN = '/usr/lib/postgresql/15/bin';

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
}

export interface Postgres {
  url: string;
  port: number;
  stop(): void;
}

function asPostgres(args: string[]): ReturnType<typeof spawnSync> {
  const asRoot = process.getuid?.() === 0;
  return asRoot ? spawnSync('runuser', ['-u', 'postgres', '--', ...args], { encoding: 'utf8' }) : spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
}

export async function startPostgres(): Promise<Postgres> {
  if (!fs.existsSync(path.join(PG_BIN, 'initdb'))) throw new Error('PostgreSQL 15 is not installed: apt-get install -y postgresql');
  const dir = tempDir('panthers-pg-');
  if (process.getuid?.() === 0) spawnSync('chown', ['postgres', dir]);
  const data = path.join(dir, 'data');
  const init = asPostgres([path.join(PG_BIN, 'initdb'), '-D', data, '-A', 'trust', '-U', 'panthers', '--no-sync']);
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const start = asPostgres([
    path.join(PG_BIN, 'pg_ctl'), '-D', data, '-l', path.join(dir, 'log'), '-w',
    '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`, 'start',
  ]);
  if (start.status !== 0) throw new Error(`pg_ctl start failed: ${start.stderr}\n${fs.readFileSync(path.join(dir, 'log'), 'utf8')}`);
  await waitForPort(port, 10_000);
  return {
    url: `postgres://panthers@127.0.0.1:${port}/postgres`,
    port,
    stop: () => {
      asPostgres([path.join(PG_BIN, 'pg_ctl'), '-D', data, 'stop', '-m', 'immediate']);
    },
  };
}

export interface Nats {
  url: string;
  port: number;
  child: ChildProcess;
  stop(): void;
}

/** `auth`: the server requires this user and password; `url` then carries them (nats://user:pass@...). */
export async function startNats(auth?: { user: string; pass: string }): Promise<Nats> {
  const port = await freePort();
  const args = ['-a', '127.0.0.1', '-p', String(port), ...(auth ? ['--user', auth.user, '--pass', auth.pass] : [])];
  const child = spawn('nats-server', args, { stdio: 'ignore' });
  await waitForPort(port, 10_000);
  const cred = auth ? `${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.pass)}@` : '';
  return { url: `nats://${cred}127.0.0.1:${port}`, port, child, stop: () => child.kill('SIGKILL') };
}
