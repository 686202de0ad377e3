import type { Sql } from 'postgres';
import { request } from './server.js';

/**
 * What the cluster ACKNOWLEDGED to its clients (a 2xx, a final SSE/WS frame), Jepsen-style: after
 * every fault each entry must read back, the same, from EVERY live node. Also what the clients
 * saw on the wire: per NFT the deployment_status frames (progress never goes back) and per
 * stream how it ended (interrupted ones must end `incomplete`, never silently).
 */
export interface AckTurn {
  nft: string;
  conversationId: string;
  user: string;
  reply: string;
  /** the node the client called */
  via: string;
}

export interface AckDeploy {
  nft: string;
  deploymentId: string;
  via: string;
}

const STATUS_RANK: Record<string, number> = { pending: 0, deploying: 1, running: 2, stopping: 3, stopped: 4, failed: 4 };
export const LIVE_STATUSES = ['pending', 'deploying', 'running', 'stopping'];

export class ClientLedger {
  readonly turns: AckTurn[] = [];
  readonly deploys: AckDeploy[] = [];
  readonly violations: string[] = [];
  /** NFT -> last (rank, progress) seen in a deployment_status frame, per deployment */
  private readonly frameProgress = new Map<string, { rank: number; progress: number }>();
  streamsEnded = { complete: 0, incomplete: 0, cut: 0 };

  ackTurn(t: AckTurn): void {
    this.turns.push(t);
  }

  ackDeploy(d: AckDeploy): void {
    this.deploys.push(d);
  }

  /** A deployment_status frame as a client got it: its progress must never go back. */
  frame(f: { type: string; deployment_id?: string; nft_token_id?: string; status?: string; progress?: number }, where: string): void {
    if (f.type !== 'deployment_status' || !f.deployment_id || !f.status) return;
    const rank = STATUS_RANK[f.status] ?? -1;
    const progress = f.progress ?? 0;
    const prev = this.frameProgress.get(f.deployment_id);
    if (prev && (rank < prev.rank || (rank === prev.rank && progress < prev.progress))) {
      this.violations.push(`frames went back (${where}): deployment ${f.deployment_id} of NFT ${f.nft_token_id} ${f.status}/${progress} after rank ${prev.rank}/${prev.progress}`);
    }
    if (!prev || rank > prev.rank || (rank === prev.rank && progress > prev.progress)) this.frameProgress.set(f.deployment_id, { rank, progress });
  }

  /**
   * Every acknowledged turn reads back from every node given (history through the node), with
   * the acknowledged reply, complete; every acknowledged deploy is visible from every node.
   * Returns how many reads were made.
   */
  async verify(nodes: { id: string; url: string }[], tokenFor: (nft: string) => string, sql?: Sql): Promise<number> {
    let reads = 0;
    const byConv = new Map<string, AckTurn[]>();
    for (const t of this.turns) byConv.set(`${t.nft}\n${t.conversationId}`, [...(byConv.get(`${t.nft}\n${t.conversationId}`) ?? []), t]);
    const jobs: Promise<void>[] = [];
    for (const node of nodes) {
      for (const [key, turns] of byConv) {
        const [nft, conv] = key.split('\n') as [string, string];
        jobs.push((async () => {
          // Every page (100 messages at most each): a conversation the rounds scenario keeps going grows past one.
          const msgs: { role: string; content: string; incomplete?: boolean }[] = [];
          for (let offset = 0; ; ) {
            const h = await getRetrying(node.url, `/v1/agents/${nft}/chat/history?conversation_id=${conv}&limit=100&offset=${offset}`, tokenFor(nft));
            reads++;
            if (h.status !== 200) {
              this.violations.push(`history of ${conv} (NFT ${nft}) unreadable from ${node.id}: ${h.status} ${h.text.slice(0, 200)}`);
              return;
            }
            const page = h.body.messages as typeof msgs;
            msgs.push(...page);
            offset += page.length;
            if (!h.body.pagination?.has_more || page.length === 0) break;
          }
          for (const t of turns) {
            const at = msgs.findIndex((m) => m.role === 'user' && m.content === t.user);
            if (at < 0) {
              // Lost, or a stale read? PostgreSQL itself tells.
              const inDb = sql ? (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM messages WHERE conversation_id = ${conv} AND content = ${t.user}`.catch(() => [{ n: -1 }]))[0]!.n : -1;
              this.violations.push(`acknowledged turn "${t.user.slice(0, 40)}" (conversation ${conv}, via ${t.via}) missing when read from ${node.id} (history had ${msgs.length} messages; rows in PostgreSQL: ${inDb})`);
            }
            else if (msgs[at + 1]?.role !== 'assistant' || msgs[at + 1]!.content !== t.reply || msgs[at + 1]!.incomplete) {
              this.violations.push(`acknowledged reply to "${t.user}" (conversation ${conv}) differs when read from ${node.id}: ${JSON.stringify(msgs[at + 1] ?? null).slice(0, 200)}`);
            }
            if (msgs.filter((m) => m.role === 'user' && m.content === t.user).length > 1) this.violations.push(`turn "${t.user}" stored twice (read from ${node.id})`);
          }
        })());
      }
      for (const d of this.deploys) {
        jobs.push((async () => {
          const g = await getRetrying(node.url, `/v1/deployments/${d.nft}`, tokenFor(d.nft));
          reads++;
          if (g.status !== 200) this.violations.push(`acknowledged deployment ${d.deploymentId} of NFT ${d.nft} unreadable from ${node.id}: ${g.status} ${g.text.slice(0, 200)}`);
          // A later deploy of the same NFT may have replaced it; the acknowledged one must exist.
          else if (g.body.deployment_id !== d.deploymentId && !this.deploys.some((x) => x.nft === d.nft && x.deploymentId === g.body.deployment_id)) {
            this.violations.push(`NFT ${d.nft}: ${node.id} shows deployment ${g.body.deployment_id}, not the acknowledged ${d.deploymentId}`);
          }
        })());
      }
    }
    await Promise.all(jobs);
    return reads;
  }
}

/** A GET that rides out a failover (503/504 or a reset are retried for a few seconds). */
export async function getRetrying(url: string, path: string, token: string, ms = 8000): Promise<{ status: number; body: any; text: string }> {
  const until = performance.now() + ms;
  for (;;) {
    try {
      const r = await request(url, 'GET', path, { token });
      if ((r.status !== 503 && r.status !== 504) || performance.now() > until) return r;
    } catch (e) {
      if (performance.now() > until) return { status: 0, body: undefined, text: String(e) };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The invariants checked against PostgreSQL itself, every `intervalMs`, for the whole test:
 * at most one live deployment per NFT; per shard the lease epoch never goes back (one live
 * lease per shard, hence per NFT, is the primary key); per deployment status and progress never
 * go back; per conversation the stored messages never decrease.
 */
export class ClusterInvariants {
  readonly violations: string[] = [];
  /** queries that could not run (a table not there yet): reported, not violations */
  readonly unavailable = new Set<string>();
  checks = 0;
  private readonly epochs = new Map<number, bigint>();
  private readonly progress = new Map<string, { rank: number; progress: number; status: string }>();
  private readonly messages = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly sql: Sql) {}

  start(intervalMs = 250): void {
    const tick = () => {
      this.running = this.checkOnce().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, intervalMs);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    await this.checkOnce();
  }

  private async q<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (e) {
      this.unavailable.add(`${name}: ${(e as Error).message}`);
      return undefined;
    }
  }

  async checkOnce(): Promise<void> {
    this.checks++;
    const leases = await this.q('shard_leases', () => this.sql<{ shard: number; epoch: string }[]>`SELECT shard, epoch::text AS epoch FROM shard_leases`);
    for (const l of leases ?? []) {
      const e = BigInt(l.epoch);
      const prev = this.epochs.get(l.shard);
      if (prev !== undefined && e < prev) this.violations.push(`shard ${l.shard}: lease epoch went back from ${prev} to ${e}`);
      if (prev === undefined || e > prev) this.epochs.set(l.shard, e);
    }
    const twice = await this.q('deployments (live per NFT)', () => this.sql<{ nft_token_id: string; n: number; ids: string }[]>`
      SELECT nft_token_id, count(*)::int AS n, string_agg(id || ':' || status, ',') AS ids FROM deployments
      WHERE status IN ('pending', 'deploying', 'running', 'stopping') GROUP BY nft_token_id HAVING count(*) > 1`);
    for (const t of twice ?? []) this.violations.push(`NFT ${t.nft_token_id}: ${t.n} live deployments at once (${t.ids})`);
    const deps = await this.q('deployments (progress)', () => this.sql<{ id: string; status: string; progress: number }[]>`SELECT id, status, progress::int AS progress FROM deployments`);
    for (const d of deps ?? []) {
      const rank = STATUS_RANK[d.status] ?? -1;
      const prev = this.progress.get(d.id);
      if (prev && (rank < prev.rank || (rank === prev.rank && d.progress < prev.progress))) {
        this.violations.push(`deployment ${d.id}: went back from ${prev.status}/${prev.progress} to ${d.status}/${d.progress}`);
      }
      if (!prev || rank > prev.rank || (rank === prev.rank && d.progress > prev.progress)) this.progress.set(d.id, { rank, progress: d.progress, status: d.status });
    }
    const convs = await this.q('messages', () => this.sql<{ conversation_id: string; n: number }[]>`SELECT conversation_id, count(*)::int AS n FROM messages GROUP BY conversation_id`);
    for (const c of convs ?? []) {
      const prev = this.messages.get(c.conversation_id) ?? 0;
      if (c.n < prev) this.violations.push(`conversation ${c.conversation_id}: ${prev} stored messages became ${c.n}`);
      this.messages.set(c.conversation_id, Math.max(prev, c.n));
    }
  }

  /** The current epoch of a shard (as last read). */
  epoch(shard: number): bigint | undefined {
    return this.epochs.get(shard);
  }
}
