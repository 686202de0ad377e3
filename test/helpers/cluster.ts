import postgres from 'postgres';
import { spawnCli, tempDir, request, waitFor, type ServerProcess, type HttpResult, type RequestOptions } from './server.js';
import { startPostgres, startNats, type Postgres, type Nats } from './engines.js';

/**
 * Cluster nodes for tests: real `panthers serve` processes (dist/bin/panthers.js, PORT=0) on one
 * real PostgreSQL and one real nats-server (test/helpers/engines.ts). 17e's fault tests, the soak's
 * `--cluster` mode and the bench build on these; keep them backward compatible (add, don't rename).
 *
 * The stores are on PostgreSQL; the nodes of one cluster still share one data dir for the
 * provider-secrets key file: pass `dataDir` to share it with a node you start later.
 */
export interface Engines {
  pg: Postgres;
  nats: Nats;
  stop(): void;
}

export async function startEngines(): Promise<Engines> {
  const [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  return { pg, nats, stop: () => { nats.stop(); pg.stop(); } };
}

export interface ClusterNodeOptions {
  nodeId?: string;
  /** shared by the cluster's nodes (see above); a temp dir by default */
  dataDir?: string;
  /** lease TTL (default 3000 ms here, 5000 in production) and renewal interval (default 500 ms) */
  leaseTtlMs?: number;
  renewMs?: number;
  env?: Record<string, string>;
}

export interface ClusterNodeProcess extends ServerProcess {
  nodeId: string;
  dataDir: string;
  request(method: string, urlPath: string, opts?: RequestOptions): Promise<HttpResult>;
  /** GET /health's body (its `cluster` part names the node, its shards and leases). */
  health(): Promise<any>;
  /** SIGTERM (graceful: drains and releases its shards) and waits for the exit code. */
  stop(): Promise<number | null>;
  /** kill -9: the lease is left to expire. */
  kill(): Promise<number | null>;
}

let counter = 0;

export function clusterEnv(engines: Engines, o: ClusterNodeOptions & { nodeId: string; dataDir: string }): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    PANTHERS_DATA_DIR: o.dataDir,
    PANTHERS_DATABASE_URL: engines.pg.url,
    PANTHERS_NATS_URL: engines.nats.url,
    PANTHERS_NODE_ID: o.nodeId,
    PANTHERS_CLUSTER_SECRET: 'test-cluster-secret-0123456789abcdef',
    PANTHERS_CLUSTER_LEASE_TTL_MS: String(o.leaseTtlMs ?? 3000),
    PANTHERS_CLUSTER_RENEW_MS: String(o.renewMs ?? 500),
    PANTHERS_RATE_LIMITS: 'off',
    PANTHERS_SCRIPTED_DELAY_MS: '0',
    PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '10000',
    PANTHERS_SHUTDOWN_GRACE_MS: '3000',
    ...o.env,
  };
}

/** Starts one node and waits until it listens (it has claimed its first shards by then). */
export async function startClusterNode(engines: Engines, opts: ClusterNodeOptions = {}): Promise<ClusterNodeProcess> {
  const nodeId = opts.nodeId ?? `n${process.pid}-${++counter}`;
  const dataDir = opts.dataDir ?? tempDir('panthers-cluster-');
  const p = await spawnCli(['serve'], clusterEnv(engines, { ...opts, nodeId, dataDir }));
  const signal = (sig: NodeJS.Signals) => {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(sig);
    return p.exited;
  };
  return {
    ...p, nodeId, dataDir,
    request: (m, path, o) => request(p.url, m, path, o),
    health: async () => (await request(p.url, 'GET', '/health')).body,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
  };
}

export interface Cluster {
  nodes: ClusterNodeProcess[];
  dataDir: string;
  engines: Engines;
  /** Adds a node to the same cluster (same data dir). */
  add(opts?: ClusterNodeOptions): Promise<ClusterNodeProcess>;
  /** SIGTERMs every node still running. */
  stop(): Promise<void>;
}

/**
 * Starts `n` nodes on the engines, one after the other (the first creates the data dir's schema and
 * JWT key; the others then start together), and waits until every shard has exactly one owner.
 */
export async function startClusterNodes(n: number, engines: Engines, opts: Omit<ClusterNodeOptions, 'nodeId'> & { nodeIds?: string[] } = {}): Promise<Cluster> {
  const dataDir = opts.dataDir ?? tempDir('panthers-cluster-');
  const ids = opts.nodeIds ?? Array.from({ length: n }, (_, i) => `node-${String.fromCharCode(97 + i)}`);
  const first = await startClusterNode(engines, { ...opts, dataDir, nodeId: ids[0] });
  const rest = await Promise.all(ids.slice(1, n).map((nodeId) => startClusterNode(engines, { ...opts, dataDir, nodeId })));
  const nodes = [first, ...rest];
  const cluster: Cluster = {
    nodes, dataDir, engines,
    add: async (o = {}) => {
      const node = await startClusterNode(engines, { ...opts, ...o, dataDir });
      nodes.push(node);
      return node;
    },
    stop: async () => {
      await Promise.all(nodes.map((x) => x.stop()));
    },
  };
  await waitFor(async () => {
    const owners = await shardOwners(engines);
    return owners.size === 256 && [...owners.values()].every((o) => nodes.some((x) => x.nodeId === o));
  }, 20_000, 100);
  return cluster;
}

/** shard -> owner of every live (unexpired) lease, read from PostgreSQL. */
export async function shardOwners(engines: Engines): Promise<Map<number, string>> {
  const sql = postgres(engines.pg.url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ shard: number; owner: string }[]>`SELECT shard, owner FROM shard_leases WHERE owner IS NOT NULL AND expires_at > now()`;
    return new Map(rows.map((r) => [r.shard, r.owner]));
  } catch {
    return new Map();
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** How many shards each node owns (from PostgreSQL). */
export async function shardCounts(engines: Engines): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const o of (await shardOwners(engines)).values()) out[o] = (out[o] ?? 0) + 1;
  return out;
}

/**
 * Waits until the leases match rendezvous placement over `nodes` (a join or leave has been
 * rebalanced): every shard owned, each by the node that hashes highest for it.
 */
export async function waitForBalance(engines: Engines, nodeIds: string[], timeoutMs = 30_000): Promise<Map<number, string>> {
  const { preferredOwner } = await import('../../src/cluster/shards.js');
  let owners = new Map<number, string>();
  await waitFor(async () => {
    owners = await shardOwners(engines);
    if (owners.size !== 256) return false;
    for (const [s, o] of owners) if (preferredOwner(s, nodeIds) !== o) return false;
    return true;
  }, timeoutMs, 100);
  return owners;
}
