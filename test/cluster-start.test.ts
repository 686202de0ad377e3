import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import postgres from 'postgres';
import { CLI, tempDir } from './helpers/server.js';
import { clusterEnv } from './helpers/cluster.js';
import { startNats, startPostgres, type Nats, type Postgres } from './helpers/engines.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

/**
 * A cluster node starting while PostgreSQL or NATS is briefly unreachable or resetting retries
 * with capped backoff and says so in its log (`cluster link unreachable at start: retrying`),
 * then serves once the link is back; a configuration error (an unknown database or role, a NATS
 * authorization failure, no PANTHERS_CLUSTER_SECRET) ends the start at once with the reason, and
 * the process exits (a failed start used to leave handles that kept it alive). Real PostgreSQL 15
 * and nats-server; a link is refused through a TcpProxy (test/helpers/tcp-proxy.ts), a reset is
 * PostgreSQL terminating the node's connections (what its restart does).
 */
let pg: Postgres;
let nats: Nats;
let authNats: Nats;
const running = new Set<ChildProcess>();

before(async () => {
  [pg, nats, authNats] = await Promise.all([startPostgres(), startNats(), startNats({ user: 'panthers', pass: 'right-pass' })]);
});
after(() => {
  for (const c of running) c.kill('SIGKILL');
  pg?.stop();
  nats?.stop();
  authNats?.stop();
});

interface Node {
  child: ChildProcess;
  out: () => string;
  /** resolves with the exit code (null: killed by a signal) */
  exited: Promise<number | null>;
  /** resolves with the port once the node logs "listening" */
  listening: Promise<number>;
}

function startNode(env: Record<string, string>): Node {
  const dataDir = tempDir('panthers-start-');
  const base = clusterEnv({ pg, nats, stop: () => {} }, { nodeId: `start-${running.size + 1}`, dataDir, leaseTtlMs: 3000 });
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...process.env, ...base, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let onOut = () => {};
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); onOut(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); onOut(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => { running.delete(child); r(code); }));
  const listening = new Promise<number>((resolve, reject) => {
    onOut = () => {
      const m = /"msg":"listening"[^\n]*"port":(\d+)|"port":(\d+)[^\n]*"msg":"listening"/.exec(out);
      if (m) resolve(Number(m[1] ?? m[2]));
    };
    void exited.then((code) => reject(new Error(`node exited with ${code} before listening:\n${out.slice(-3000)}`)));
  });
  listening.catch(() => undefined);
  return { child, out: () => out, exited, listening };
}

async function until(what: string, cond: () => boolean, ms: number, node: Node): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`${what} not seen within ${ms} ms:\n${node.out().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The structured retry lines the node logged for a link. */
function retries(node: Node, link: 'postgres' | 'nats'): any[] {
  return node.out().split('\n').filter((l) => l.includes('cluster link unreachable at start')).map((l) => JSON.parse(l)).filter((j) => j.link === link);
}

async function healthy(port: number): Promise<any> {
  const end = performance.now() + 15_000;
  for (;;) {
    const r = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
    const body = r ? await r.json().catch(() => undefined) : undefined;
    if (r?.status === 200) return body;
    if (performance.now() > end) throw new Error(`/health not 200: ${r?.status} ${JSON.stringify(body)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function stop(node: Node): Promise<number | null> {
  node.child.kill('SIGTERM');
  const t = setTimeout(() => node.child.kill('SIGKILL'), 15_000);
  const code = await node.exited;
  clearTimeout(t);
  return code;
}

/** Exits by itself within `ms` (a failed start must not linger on open handles). */
async function exitsWithin(node: Node, ms: number): Promise<number | null> {
  const t0 = performance.now();
  const code = await Promise.race([node.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms))]);
  if (code === 'hung') {
    node.child.kill('SIGKILL');
    assert.fail(`the node had not exited ${ms} ms after its start failed:\n${node.out().slice(-2000)}`);
  }
  assert.ok(performance.now() - t0 < ms);
  return code;
}

describe('cluster node start: transient link failures are retried, configuration errors are not', { timeout: 180_000 }, () => {
  for (const link of ['postgres', 'nats'] as const) {
    test(`${link} refused at start, back 1.5 s later: the node retries (logged), then serves`, async () => {
      const proxy = await TcpProxy.start(link === 'postgres' ? pg.port : nats.port);
      try {
        proxy.cut('refuse');
        const node = startNode(link === 'postgres' ? { PANTHERS_DATABASE_URL: proxy.url(pg.url) } : { PANTHERS_NATS_URL: proxy.url(nats.url) });
        await until(`a ${link} retry line`, () => retries(node, link).length >= 2, 15_000, node);
        const line = retries(node, link)[0];
        assert.equal(line.level, 40, 'a warning');
        assert.equal(line.code, 'ECONNREFUSED');
        assert.ok(line.retry_in_ms > 0 && line.retry_in_ms <= 5000, `backoff is capped: ${line.retry_in_ms}`);
        assert.ok(!/password|secret/i.test(JSON.stringify(line)), 'no credentials in the log');
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(node.child.exitCode, null, 'still trying, not exited');
        await proxy.restore();
        const port = await node.listening;
        const h = await healthy(port);
        assert.equal(h.cluster.postgres, 'up');
        assert.equal(h.cluster.nats, 'connected');
        assert.match(node.out(), /"msg":"cluster links up"/);
        assert.equal(await stop(node), 0);
      } finally {
        await proxy.close();
      }
    });
  }

  test('PostgreSQL resetting at start (its connections terminated, as a restart does): retried, then serves', async () => {
    // What a PostgreSQL restart sends its clients: "terminating connection due to administrator
    // command" (57P01), or a reset socket. Every connection of the starting node is terminated
    // until it has logged a retry; then the server is left alone and the node must come up.
    const admin = postgres(pg.url, { max: 1, onnotice: () => undefined });
    let terminating = true;
    const terminator = (async () => {
      while (terminating) {
        await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`.catch(() => undefined);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      const node = startNode({});
      await until('a retry after a terminated connection', () => retries(node, 'postgres').length >= 1, 20_000, node).finally(() => {
        terminating = false;
      });
      await terminator;
      const port = await node.listening;
      await healthy(port);
      const lines = retries(node, 'postgres');
      assert.ok(lines.some((l) => /57P01|ECONNRESET|CONNECTION_CLOSED|CONNECTION_DESTROYED/.test(l.code)), JSON.stringify(lines));
      assert.equal(await stop(node), 0);
    } finally {
      terminating = false;
      await terminator;
      await admin.end({ timeout: 1 });
    }
  });

  test('PostgreSQL unreachable past PANTHERS_CLUSTER_START_TIMEOUT_MS: the node gives up with the reason and exits 1', async () => {
    const proxy = await TcpProxy.start(pg.port);
    try {
      proxy.cut('refuse');
      const node = startNode({ PANTHERS_DATABASE_URL: proxy.url(pg.url), PANTHERS_CLUSTER_START_TIMEOUT_MS: '1500' });
      assert.equal(await exitsWithin(node, 15_000), 1);
      assert.match(node.out(), /panthers: cluster mode: cannot use PostgreSQL at PANTHERS_DATABASE_URL \(.*\); still unreachable after \d+ attempts/);
      assert.ok(retries(node, 'postgres').length >= 1);
    } finally {
      await proxy.close();
    }
  });

  test('a start that fails once both links are open (its port taken): the node says why and exits 1 (it lingered on its open handles)', async () => {
    const busy = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    try {
      const node = startNode({ PORT: String((busy.address() as net.AddressInfo).port) });
      assert.equal(await exitsWithin(node, 10_000), 1);
      assert.match(node.out(), /panthers: cannot listen on 127\.0\.0\.1:\d+/);
    } finally {
      busy.close();
    }
  });

  const configErrors: [string, () => Record<string, string>, RegExp][] = [
    ['an unknown database', () => ({ PANTHERS_DATABASE_URL: pg.url.replace(/\/postgres$/, '/no_such_db') }), /cannot use PostgreSQL at PANTHERS_DATABASE_URL \(.*no_such_db.*does not exist\)/],
    ['an unknown role', () => ({ PANTHERS_DATABASE_URL: pg.url.replace('panthers@', 'nobody:wrong@') }), /cannot use PostgreSQL at PANTHERS_DATABASE_URL \(.*role "nobody" does not exist\)/],
    ['a wrong NATS password', () => ({ PANTHERS_NATS_URL: authNats.url.replace('right-pass', 'wrong-pass') }), /cannot reach NATS at PANTHERS_NATS_URL \(.*[Aa]uthorization/],
    ['an unresolvable PostgreSQL host', () => ({ PANTHERS_DATABASE_URL: 'postgres://panthers@no-such-host.invalid:5432/postgres' }), /cannot use PostgreSQL at PANTHERS_DATABASE_URL \(.*(ENOTFOUND|getaddrinfo)/],
    ['no PANTHERS_CLUSTER_SECRET (PostgreSQL reachable)', () => ({ PANTHERS_CLUSTER_SECRET: '' }), /PANTHERS_CLUSTER_SECRET is required in cluster mode/],
  ];
  for (const [what, env, message] of configErrors) {
    test(`${what}: not retried; the node says why and exits 1`, async () => {
      const node = startNode(env());
      assert.equal(await exitsWithin(node, 10_000), 1);
      assert.match(node.out(), message);
      assert.equal(retries(node, 'postgres').length + retries(node, 'nats').length, 0, 'a configuration error is not retried');
      assert.ok(!node.out().includes('wrong-pass'), 'the password is not printed');
    });
  }
});
