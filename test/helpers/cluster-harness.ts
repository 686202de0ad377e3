import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import postgres, { type Sql } from 'postgres';
import { CLI, tempDir } from './server.js';
import { startNats, startPostgres, type Nats, type Postgres } from './engines.js';
import { TcpProxy } from './tcp-proxy.js';
import { preferredOwner, shardOf } from '../../src/cluster/shards.js';

/**
 * Three (or N) real `panthers serve` processes on loopback, cluster mode, on ONE real PostgreSQL
 * and ONE nats-server (test/helpers/engines.ts). Each node reaches PostgreSQL and NATS through
 * its own TcpProxy, so a test can cut one node's links without touching the others; every node
 * reads the same owners file (the registry's PANTHERS_OWNERS_FILE), so ownership needs no store.
 * The harness also holds a direct PostgreSQL connection for the invariants (at most one live
 * lease and deployment per NFT) and to find an NFT's owner from the lease table itself.
 *
 * Until the cluster node exists the server refuses these variables at start; that refusal is
 * reported as ClusterUnavailable so the tests can skip with that reason and nothing else.
 */
export class ClusterUnavailable extends Error {
  constructor(readonly output: string) {
    super('cluster mode not available yet: `panthers serve` refused PANTHERS_DATABASE_URL/PANTHERS_NATS_URL at start');
  }
}

const REFUSED_RE = /cluster mode is not available/i;

export interface ClusterOptions {
  /** lease TTL for every node (PANTHERS_CLUSTER_LEASE_TTL_MS, at least 1000); short in tests */
  leaseTtlMs?: number;
  /** more env for every node */
  env?: Record<string, string>;
  /** NFT -> owner address, written to the shared owners file */
  owners?: Record<string, string>;
  /** a per-node HTTP API behind its own TcpProxy (e.g. the fake Akash console), to count calls per node */
  providerPort?: number;
  /** LOG_LEVEL of the nodes (default warn; their output tail is kept for failures) */
  logLevel?: string;
  /**
   * One SQLite data dir for all nodes (as 17d's helper does until the PostgreSQL stores are
   * wired); default: each node its own (they share nothing but PostgreSQL and NATS, as on
   * separate machines). PANTHERS_CLUSTER_SHARE_DATA_DIR=1 sets it for a whole run.
   */
  shareDataDir?: boolean;
}

export class ClusterNode {
  child!: ChildProcess;
  url = '';
  port = 0;
  startedAt = 0;
  /** ms from spawn to the first 200 of /health */
  toHealthMs = 0;
  private out = '';
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  exited: Promise<void> = Promise.resolve();
  paused = false;
  /** left the cluster for good (SIGTERM in a leave test): heal() does not restart it */
  retired = false;
  /** exits we did not cause (a crash) are collected here */
  readonly unexpectedExits: string[] = [];
  private expectExit = false;

  constructor(
    readonly cluster: TestCluster,
    readonly id: string,
    readonly pgProxy: TcpProxy,
    readonly natsProxy: TcpProxy,
    readonly providerProxy: TcpProxy | undefined,
    readonly dataDir: string,
  ) {}

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  get alive(): boolean {
    return Boolean(this.child) && !this.exitInfo;
  }

  env(): Record<string, string> {
    const c = this.cluster;
    return {
      PANTHERS_DATABASE_URL: this.pgProxy.url(c.pg.url),
      PANTHERS_NATS_URL: this.natsProxy.url(c.nats.url),
      PANTHERS_NODE_ID: this.id,
      // 17d's names: renewal must be under half the TTL.
      PANTHERS_CLUSTER_LEASE_TTL_MS: String(c.leaseTtlMs),
      PANTHERS_CLUSTER_RENEW_MS: String(Math.max(50, Math.floor(c.leaseTtlMs / 5))),
      PANTHERS_DATA_DIR: this.dataDir,
      PANTHERS_OWNERS_FILE: c.ownersFile,
      // 17c: the same secret on every node seals the shared signing keys (32+ characters).
      PANTHERS_CLUSTER_SECRET: 'test-cluster-secret-0123456789abcdef',
      // One origin for the cluster (its balancer): a challenge signed for it verifies on any node.
      PANTHERS_PUBLIC_URL: c.publicUrl,
      PANTHERS_RATE_LIMITS: 'off',
      PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '10000',
      PANTHERS_SCRIPTED_DELAY_MS: '10',
      PANTHERS_HEALTH_INTERVAL_MS: '200',
      PANTHERS_SHUTDOWN_GRACE_MS: '5000',
      ...(this.providerProxy ? { PANTHERS_AKASH_API_URL: `http://${this.providerProxy.address}`, PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true' } : {}),
      ...c.env,
      LOG_LEVEL: c.logLevel,
      PORT: '0',
      HOST: '127.0.0.1',
    };
  }

  /** Spawns the node and resolves once its /health answers 200. */
  async start(boundMs = 20_000): Promise<void> {
    this.out = '';
    this.exitInfo = undefined;
    this.expectExit = false;
    this.paused = false;
    this.url = '';
    const t0 = performance.now();
    this.startedAt = Date.now();
    this.child = spawn(process.execPath, [CLI, 'serve'], { env: { ...process.env, ...this.env(), LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => (this.out = (this.out + d.toString()).slice(-40_000));
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        if (!this.expectExit) this.unexpectedExits.push(`node ${this.id} exited by itself (code ${code}, signal ${signal}):\n${this.out.slice(-3000)}`);
        resolve();
      });
    });
    const deadline = t0 + boundMs;
    while (!this.url) {
      const m = /"msg":"listening"[^\n]*"port":(\d+)|"port":(\d+)[^\n]*"msg":"listening"/.exec(this.out);
      if (m) {
        this.port = Number(m[1] ?? m[2]);
        this.url = `http://127.0.0.1:${this.port}`;
      } else if (this.exitInfo) {
        this.unexpectedExits.pop();
        if (REFUSED_RE.test(this.out)) throw new ClusterUnavailable(this.out);
        throw new Error(`node ${this.id} exited during start-up (${JSON.stringify(this.exitInfo)}):\n${this.out.slice(-4000)}`);
      } else if (performance.now() > deadline) {
        await this.kill();
        throw new Error(`node ${this.id} did not listen within ${boundMs} ms:\n${this.out.slice(-4000)}`);
      } else await sleep(5);
    }
    for (;;) {
      try {
        const r = await fetch(this.url + '/health', { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status === 200) break;
      } catch {
        /* not yet */
      }
      if (performance.now() > deadline) {
        await this.kill();
        throw new Error(`node ${this.id}: /health not 200 within ${boundMs} ms:\n${this.out.slice(-4000)}`);
      }
      await sleep(10);
    }
    this.toHealthMs = performance.now() - t0;
  }

  /** kill -9 (or another signal), awaited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.expectExit = true;
    if (this.paused) this.resume();
    if (this.alive) this.child.kill(signal);
    await this.exited;
    return this.exitInfo!;
  }

  /** SIGTERM: the planned way out (drain, release the shards); SIGKILL past `graceMs`. */
  async terminate(graceMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.expectExit = true;
    if (!this.alive) return this.exitInfo!;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
    return this.exitInfo!;
  }

  pause(): void {
    this.child.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    this.child.kill('SIGCONT');
    this.paused = false;
  }

  async health(): Promise<any> {
    const r = await fetch(this.url + '/health', { signal: AbortSignal.timeout(3000) });
    return r.json();
  }

  output(): string {
    return this.out;
  }
}

export class TestCluster {
  readonly nodes: ClusterNode[] = [];
  /** the harness's own connection (not through any node's proxy) */
  sql!: Sql;
  ownersFile = '';
  leaseTtlMs = 1500;
  env: Record<string, string> = {};
  logLevel = 'warn';
  private nextId = 1;
  shareDataDir = false;
  /** a round-robin balancer over the live nodes (the cluster's one public origin) */
  balancer!: TcpProxy;
  private rr = 0;
  private constructor(readonly pg: Postgres, readonly nats: Nats, readonly dir: string, private readonly providerPort: number | undefined) {}

  /** Starts PostgreSQL, NATS and `count` nodes (in parallel). Throws ClusterUnavailable when the switch is refused. */
  static async start(count: number, opts: ClusterOptions = {}): Promise<TestCluster> {
    const [pg, nats] = await Promise.all([startPostgres(), startNats()]);
    const c = new TestCluster(pg, nats, tempDir('panthers-cluster-'), opts.providerPort);
    c.leaseTtlMs = opts.leaseTtlMs ?? 1500;
    c.env = opts.env ?? {};
    c.logLevel = opts.logLevel ?? 'warn';
    c.shareDataDir = opts.shareDataDir ?? process.env.PANTHERS_CLUSTER_SHARE_DATA_DIR === '1';
    c.ownersFile = path.join(c.dir, 'owners.json');
    c.setOwners(opts.owners ?? {});
    c.sql = postgres(pg.url, { max: 4, onnotice: () => undefined });
    c.balancer = await TcpProxy.balancer(() => {
      const live = c.live().filter((n) => n.port);
      return live.length ? live[c.rr++ % live.length]!.port : undefined;
    });
    c.balancer.recordSends = false;
    try {
      c.migrate();
      // The first node alone first: it creates the schema if `panthers migrate` is not there.
      await c.addNode();
      await Promise.all(Array.from({ length: count - 1 }, () => c.addNode()));
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  /** the balancer's URL: what a client of the cluster calls */
  get publicUrl(): string {
    return `http://${this.balancer.address}`;
  }

  setOwners(owners: Record<string, string>): void {
    const tmp = this.ownersFile + '.tmp';
    fs.writeFileSync(tmp, JSON.stringify(owners));
    fs.renameSync(tmp, this.ownersFile);
  }

  /** `panthers migrate` against the database when the CLI has it (17b); otherwise the nodes migrate. */
  migrate(): void {
    const r = spawnSync(process.execPath, [CLI, 'migrate'], { env: { ...process.env, PANTHERS_DATABASE_URL: this.pg.url, LOG_LEVEL: 'warn' }, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0 && !/unknown command|usage/i.test(r.stdout + r.stderr) && !REFUSED_RE.test(r.stdout + r.stderr)) {
      throw new Error(`panthers migrate failed (${r.status}): ${r.stdout}${r.stderr}`);
    }
  }

  /** A new node (a join): own proxies, own data dir, started. */
  async addNode(): Promise<ClusterNode> {
    const id = `node-${this.nextId++}`;
    const [pgProxy, natsProxy, providerProxy] = await Promise.all([
      TcpProxy.start(this.pg.port),
      TcpProxy.start(this.nats.port),
      this.providerPort ? TcpProxy.start(this.providerPort) : Promise.resolve(undefined),
    ]);
    pgProxy.recordSends = false;
    natsProxy.recordSends = false;
    const dataDir = this.shareDataDir ? path.join(this.dir, 'shared-data') : path.join(this.dir, id);
    fs.mkdirSync(dataDir, { recursive: true });
    const node = new ClusterNode(this, id, pgProxy, natsProxy, providerProxy, dataDir);
    this.nodes.push(node);
    await node.start();
    return node;
  }

  live(): ClusterNode[] {
    return this.nodes.filter((n) => n.alive && !n.paused && n.url !== '');
  }

  byId(id: string): ClusterNode | undefined {
    return this.nodes.find((n) => n.id === id);
  }

  /** The node id holding the NFT's shard lease right now (by the database's clock), if any. */
  async ownerOf(nft: string): Promise<string | undefined> {
    const rows = await this.sql<{ owner: string | null }[]>`SELECT owner FROM shard_leases WHERE shard = ${shardOf(nft)} AND expires_at > now()`;
    return rows[0]?.owner ?? undefined;
  }

  /** A live node that does NOT own the NFT (the whole point: every request is forwarded). */
  async notOwner(nft: string, salt = 0): Promise<ClusterNode> {
    const owner = await this.ownerOf(nft);
    const others = this.live().filter((n) => n.id !== owner);
    if (others.length === 0) throw new Error(`no live node other than ${owner}`);
    return others[(salt + shardOf(nft)) % others.length]!;
  }

  /** Waits until every one of the 256 shards has a live lease held by a live node. */
  async settled(timeoutMs = 20_000): Promise<number> {
    const t0 = performance.now();
    const ids = new Set(this.live().map((n) => n.id));
    for (;;) {
      const rows = await this.sql<{ owner: string | null; live: boolean }[]>`SELECT owner, expires_at > now() AS live FROM shard_leases`;
      if (rows.length >= 256 && rows.every((r) => r.live && r.owner && ids.has(r.owner))) return performance.now() - t0;
      if (performance.now() - t0 > timeoutMs) {
        const byOwner = new Map<string, number>();
        for (const r of rows) byOwner.set(`${r.owner}${r.live ? '' : ' (expired)'}`, (byOwner.get(`${r.owner}${r.live ? '' : ' (expired)'}`) ?? 0) + 1);
        throw new Error(`shards not all held by live nodes within ${timeoutMs} ms: ${JSON.stringify([...byOwner])}`);
      }
      await sleep(50);
    }
  }

  /** After a scenario (passed or not): every node running again, links restored, none paused. */
  async heal(): Promise<void> {
    for (const n of this.nodes) {
      if (n.paused) n.resume();
      await Promise.all([n.pgProxy.restore(), n.natsProxy.restore(), n.providerProxy?.restore()]);
    }
    await Promise.all(this.nodes.filter((n) => !n.alive && !n.retired).map((n) => n.start()));
  }

  /**
   * Waits until rebalancing is over: every shard held by the node rendezvous hashing prefers
   * among the live nodes (after a restart or a join, shards move back a batch at a time).
   */
  async balanced(timeoutMs = 30_000): Promise<number> {
    const t0 = performance.now();
    const ids = this.live().map((n) => n.id);
    for (;;) {
      const rows = await this.sql<{ shard: number; owner: string | null; live: boolean }[]>`SELECT shard, owner, expires_at > now() AS live FROM shard_leases`;
      if (rows.length >= 256 && rows.every((r) => r.live && r.owner === preferredOwner(r.shard, ids))) return performance.now() - t0;
      if (performance.now() - t0 > timeoutMs) throw new Error(`shards not balanced over ${ids.join(', ')} within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  unexpectedExits(): string[] {
    return this.nodes.flatMap((n) => n.unexpectedExits);
  }

  /** The unexpected exits so far, forgotten once taken (reported once). */
  takeUnexpectedExits(): string[] {
    return this.nodes.flatMap((n) => n.unexpectedExits.splice(0));
  }

  async stop(): Promise<void> {
    // The engines are stopped whatever happens before (pg_ctl daemonizes: a PostgreSQL left
    // running outlives the test process).
    const bounded = (p: Promise<unknown>) => Promise.race([p.catch(() => undefined), sleep(3000)]);
    try {
      await bounded(Promise.all(this.nodes.map((n) => n.kill())));
      await bounded(Promise.all(this.nodes.flatMap((n) => [n.pgProxy.close(), n.natsProxy.close(), n.providerProxy?.close()])));
      await bounded(this.balancer?.close() ?? Promise.resolve());
      await bounded(this.sql?.end({ timeout: 1 }) ?? Promise.resolve());
    } finally {
      this.nats.stop();
      this.pg.stop();
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
