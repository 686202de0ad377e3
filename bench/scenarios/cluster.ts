import fs from 'node:fs';
import path from 'node:path';
import postgres, { type Sql } from 'postgres';
import { Samples, summarize, type MetricResult } from '../lib/results.js';
import { cpuSeconds, spawnProc, type Proc } from '../lib/proc.js';
import { CLI, freePort, tempDir, untilHealthy } from '../lib/servers.js';
import type { BenchContext, Scenario } from '../lib/context.js';
import { startNats, startPostgres } from '../../test/helpers/engines.js';
import { TcpProxy } from '../../test/helpers/tcp-proxy.js';
import { signInOver } from '../../test/helpers/sign-in-http.js';
import { newEvmWallet } from '../../test/helpers/wallets.js';
import { shardOf } from '../../src/cluster/shards.js';

/**
 * `cluster`: what cluster mode costs, at a fixed pinned load (every server on the server CPU, the
 * harness on the load CPU; C turns in flight, N turns). Three nodes on two cores measure
 * contention, not scale (shared/reference/cluster.md), so the figures are CPU per operation per
 * process, from /proc/<pid>/stat:
 *  - a chat turn on SQLite (one process) vs on the cluster node that owns the NFT;
 *  - a turn sent to the owner (local) vs to the other node (forwarded over NATS);
 *  - each streamed chunk that crosses nodes (SSE turn forwarded minus local, per chunk);
 *  - PostgreSQL round trips (client writes through the owner's link, counted by a TCP proxy)
 *    and WAL bytes per turn;
 *  - failover: kill -9 the owner, until a turn through the other node answers.
 * The "peer" column is the baseline each row is compared with (named in the metric).
 */
const TTL_MS = 2000;

interface Node {
  proc: Proc;
  url: string;
  id: string;
  pgProxy?: TcpProxy;
}

async function startNode(ctx: BenchContext, env: Record<string, string>, id: string): Promise<Node> {
  const port = await freePort();
  const proc = spawnProc(ctx.tools, process.execPath, [CLI, 'serve'], {
    cpu: ctx.tools.serverCpu,
    env: { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', PANTHERS_RATE_LIMITS: 'off', PANTHERS_SCRIPTED_DELAY_MS: '0', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '10000', ...env },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await untilHealthy(url, proc, 30_000);
  } catch (e) {
    await proc.stop(500);
    if (/cluster mode is not available/i.test(proc.output())) throw new Error('cluster mode not available yet');
    throw e;
  }
  return { proc, url, id };
}

async function post(url: string, p: string, token: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(url + p, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

/** `n` JSON chat turns, `c` in flight, round-robin over the NFTs; throws on any non-200. */
async function turns(url: string, nfts: string[], token: (nft: string) => string, n: number, c: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: c }, async () => {
    while (next < n) {
      const nft = nfts[next++ % nfts.length]!;
      const r = await post(url, `/v1/agents/${nft}/chat`, token(nft), { message: `bench turn ${next}` });
      if (r.status !== 200) throw new Error(`turn on ${nft} via ${url}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    }
  }));
}

/** `n` streamed (SSE) turns; returns the chunks received. */
async function sseTurns(url: string, nfts: string[], token: (nft: string) => string, n: number, c: number): Promise<number> {
  let next = 0;
  let chunks = 0;
  await Promise.all(Array.from({ length: c }, async () => {
    while (next < n) {
      const nft = nfts[next++ % nfts.length]!;
      const r = await fetch(`${url}/v1/agents/${nft}/chat`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token(nft)}` }, body: JSON.stringify({ message: `bench stream ${next}`, stream: true }) });
      const text = await r.text();
      if (r.status !== 200) throw new Error(`stream on ${nft}: ${r.status} ${text.slice(0, 200)}`);
      for (const line of text.split('\n')) if (line.startsWith('data: {') && !line.includes('"done":true')) chunks++;
    }
  }));
  return chunks;
}

function cpuOf(ctx: BenchContext, nodes: Node[]): number[] {
  return nodes.map((n) => cpuSeconds(n.proc.pid, ctx.tools.clockTicks));
}

async function walBytes(sql: Sql): Promise<number> {
  const r = await sql<{ b: string }[]>`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS b`;
  return Number(r[0]!.b);
}

export const cluster: Scenario = {
  name: 'cluster',
  needs: ['auth', 'chat_sse'],
  async run(ctx: BenchContext): Promise<MetricResult[]> {
    const N = ctx.quick ? 60 : 400;
    const C = 4;
    const dir = tempDir('panthers-bench-cluster-');
    const wallet = newEvmWallet();
    const nfts = Array.from({ length: 32 }, (_, i) => String(9100 + i));
    const ownersFile = path.join(dir, 'owners.json');
    fs.writeFileSync(ownersFile, JSON.stringify(Object.fromEntries(nfts.map((n) => [n, wallet.address]))));
    const s = {
      sqliteTurn: new Samples(), ownerTurn: new Samples(), fwdTotal: new Samples(), fwdReceiver: new Samples(), fwdOwner: new Samples(),
      chunk: new Samples(), pgTrips: new Samples(), wal: new Samples(), failover: new Samples(),
    };
    const procs: Proc[] = [];
    const proxies: TcpProxy[] = [];
    const [pg, nats] = await Promise.all([startPostgres(), startNats()]);
    const sql = postgres(pg.url, { max: 2, onnotice: () => undefined });
    let note: string | undefined;
    try {
      // One SQLite process: the baseline.
      const single = await startNode(ctx, { PANTHERS_DATA_DIR: path.join(dir, 'sqlite'), PANTHERS_OWNERS_FILE: ownersFile }, 'sqlite');
      procs.push(single.proc);
      const singleTokens = new Map<string, string>();
      for (const nft of nfts.slice(0, 8)) {
        singleTokens.set(nft, (await signInOver(single.url, wallet, nft)).access_token);
        await post(single.url, '/v1/deployments', singleTokens.get(nft)!, { nft_token_id: nft, provider: 'local' });
      }

      // Two cluster nodes, each PostgreSQL link through a counting proxy, one public origin.
      const nodes: Node[] = [];
      let rr = 0;
      const balancer = await TcpProxy.balancer(() => (nodes.length ? Number(new URL(nodes[rr++ % nodes.length]!.url).port) : undefined));
      balancer.recordSends = false;
      proxies.push(balancer);
      for (const id of ['bench-a', 'bench-b']) {
        const pgProxy = await TcpProxy.start(pg.port);
        proxies.push(pgProxy);
        const node = await startNode(ctx, {
          PANTHERS_DATABASE_URL: pgProxy.url(pg.url), PANTHERS_NATS_URL: nats.url, PANTHERS_NODE_ID: id,
          PANTHERS_CLUSTER_LEASE_TTL_MS: String(TTL_MS), PANTHERS_CLUSTER_RENEW_MS: String(TTL_MS / 5),
          PANTHERS_DATA_DIR: path.join(dir, process.env.PANTHERS_CLUSTER_SHARE_DATA_DIR === '1' ? 'shared' : id), PANTHERS_OWNERS_FILE: ownersFile, PANTHERS_PUBLIC_URL: `http://${balancer.address}`,
          PANTHERS_CLUSTER_SECRET: 'bench-cluster-secret-0123456789abcdef',
        }, id);
        node.pgProxy = pgProxy;
        procs.push(node.proc);
        nodes.push(node);
      }
      const [a, b] = nodes as [Node, Node];
      const until = performance.now() + 20_000;
      const ownerOf = async (nft: string) => (await sql<{ owner: string | null }[]>`SELECT owner FROM shard_leases WHERE shard = ${shardOf(nft)} AND expires_at > now()`)[0]?.owner;
      let ofA: string[] = [];
      while (performance.now() < until) {
        ofA = [];
        for (const nft of nfts) if ((await ownerOf(nft)) === a.id) ofA.push(nft);
        const held = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM shard_leases WHERE owner IS NOT NULL AND expires_at > now()`;
        if (held[0]!.n === 256 && ofA.length >= 4) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      ofA = ofA.slice(0, 8);
      if (ofA.length === 0) throw new Error('node A owns none of the bench NFTs');
      const tokens = new Map<string, string>();
      for (const nft of ofA) {
        tokens.set(nft, (await signInOver(b.url, wallet, nft)).access_token);
        const d = await post(b.url, '/v1/deployments', tokens.get(nft)!, { nft_token_id: nft, provider: 'local' });
        if (d.status !== 202) throw new Error(`deploy ${nft}: ${d.status} ${JSON.stringify(d.body)}`);
      }
      // Agents up on both sides (a first turn each).
      const warm = async (url: string, list: string[], tok: (n: string) => string) => {
        const end = performance.now() + 20_000;
        for (;;) {
          try {
            await turns(url, list, tok, list.length, 1);
            return;
          } catch (e) {
            if (performance.now() > end) throw e;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      };
      const singleNfts = [...singleTokens.keys()];
      await warm(single.url, singleNfts, (n) => singleTokens.get(n)!);
      await warm(b.url, ofA, (n) => tokens.get(n)!);
      const tok = (n: string) => tokens.get(n)!;

      for (let round = 0; round < ctx.sizes.rounds; round++) {
        // SQLite, one process.
        let c0 = cpuOf(ctx, [single]);
        await turns(single.url, singleNfts, (n) => singleTokens.get(n)!, N, C);
        const sqliteUs = ((cpuOf(ctx, [single])[0]! - c0[0]!) / N) * 1e6;
        s.sqliteTurn.add('sqlite-mode', sqliteUs);
        // Local: to the owner.
        c0 = cpuOf(ctx, [a, b]);
        const trips0 = a.pgProxy!.sends.length;
        const wal0 = await walBytes(sql);
        await turns(a.url, ofA, tok, N, C);
        let c1 = cpuOf(ctx, [a, b]);
        const wal1 = await walBytes(sql);
        const localA = ((c1[0]! - c0[0]!) / N) * 1e6;
        const localTotal = ((c1[0]! - c0[0]! + c1[1]! - c0[1]!) / N) * 1e6;
        s.ownerTurn.add('project', localA);
        s.ownerTurn.add('sqlite-mode', sqliteUs);
        s.pgTrips.add('project', (a.pgProxy!.sends.length - trips0) / N);
        s.wal.add('project', (wal1 - wal0) / N);
        // Forwarded: to the other node.
        c0 = cpuOf(ctx, [a, b]);
        await turns(b.url, ofA, tok, N, C);
        c1 = cpuOf(ctx, [a, b]);
        s.fwdTotal.add('project', ((c1[0]! - c0[0]! + c1[1]! - c0[1]!) / N) * 1e6);
        s.fwdTotal.add('local', localTotal);
        s.fwdReceiver.add('project', ((c1[1]! - c0[1]!) / N) * 1e6);
        s.fwdOwner.add('project', ((c1[0]! - c0[0]!) / N) * 1e6);
        // Streamed turns: local, then forwarded; the difference per chunk.
        const M = Math.max(10, Math.floor(N / 4));
        c0 = cpuOf(ctx, [a, b]);
        const chunksLocal = await sseTurns(a.url, ofA, tok, M, C);
        c1 = cpuOf(ctx, [a, b]);
        const localSse = c1[0]! - c0[0]! + c1[1]! - c0[1]!;
        c0 = cpuOf(ctx, [a, b]);
        const chunksFwd = await sseTurns(b.url, ofA, tok, M, C);
        c1 = cpuOf(ctx, [a, b]);
        const fwdSse = c1[0]! - c0[0]! + c1[1]! - c0[1]!;
        s.chunk.add('project', ((fwdSse - localSse) / Math.max(1, chunksFwd)) * 1e6);
        ctx.progress(`round ${round + 1}: CPU per turn sqlite ${sqliteUs.toFixed(0)} us, owner node ${localA.toFixed(0)} us; ${chunksLocal}/${chunksFwd} chunks local/forwarded`);
      }

      // Failover: kill -9 the owner; a turn through the other node answers when B holds the shards.
      const t0 = performance.now();
      let goneMs = -1;
      void a.proc.exited.then(() => (goneMs = Math.round(performance.now() - t0)));
      a.proc.child.kill('SIGKILL');
      const nft = ofA[0]!;
      // Each attempt's start, end and answer: where the time goes when the first answer is late.
      const tries: string[] = [];
      for (;;) {
        const at = performance.now() - t0;
        const r = await post(b.url, `/v1/agents/${nft}/chat`, tok(nft), { message: 'after the kill' }).catch((e) => ({ status: 0, body: String(e) }));
        tries.push(`${Math.round(at)}-${Math.round(performance.now() - t0)} ms ${r.status}${r.status === 200 ? '' : ` ${JSON.stringify(r.body).slice(0, 120)}`}`);
        if (r.status === 200) break;
        if (performance.now() - t0 > 30_000) throw new Error(`no answer within 30 s of the kill: ${tries.join('; ')}`);
        await new Promise((res) => setTimeout(res, 50));
      }
      s.failover.add('project', performance.now() - t0);
      ctx.progress(`kill -9 of ${a.id} (reaped after ${goneMs} ms) to the first answer through ${b.id}: ${Math.round(performance.now() - t0)} ms (${tries.length} attempts: ${tries.slice(-4).join('; ')})`);
      note = `lease TTL ${TTL_MS} ms; ${N} turns, ${C} in flight, per round; every server pinned to the server CPU`;
    } catch (e) {
      note = (e as Error).message.split('\n')[0]!.slice(0, 200);
      ctx.progress(`not measured: ${note}`);
    } finally {
      for (const p of procs) await p.stop(1000);
      for (const p of proxies) await p.close();
      await sql.end({ timeout: 1 }).catch(() => undefined);
      nats.stop();
      pg.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const name = this.name;
    return [
      summarize({ name, metric: 'cpu_per_turn_owner_node_vs_sqlite', unit: 'us', better: 'lower', note }, s.ownerTurn, ['sqlite-mode']),
      summarize({ name, metric: 'cpu_per_turn_forwarded_vs_local_both_nodes', unit: 'us', better: 'lower', note }, s.fwdTotal, ['local']),
      summarize({ name, metric: 'cpu_per_forwarded_turn_receiver', unit: 'us', better: 'lower', ratio: false, note }, s.fwdReceiver, []),
      summarize({ name, metric: 'cpu_per_forwarded_turn_owner', unit: 'us', better: 'lower', ratio: false, note }, s.fwdOwner, []),
      summarize({ name, metric: 'cpu_per_cross_node_chunk', unit: 'us', better: 'lower', ratio: false, note }, s.chunk, []),
      summarize({ name, metric: 'pg_round_trips_per_turn', unit: 'writes', better: 'lower', ratio: false, note }, s.pgTrips, []),
      summarize({ name, metric: 'wal_bytes_per_turn', unit: 'B', better: 'lower', ratio: false, note }, s.wal, []),
      summarize({ name, metric: 'failover_kill9_to_answer', unit: 'ms', better: 'lower', ratio: false, note }, s.failover, []),
    ];
  },
};
