import type { Sql } from '../db/pg.js';
import type { Fence } from '../db/fence.js';
import { checkFenced, fenceCte } from '../db/fence-pg.js';
import type { Invalidations } from '../db/invalidations.js';
import { ApiError } from '../errors.js';
import type { ProviderRef } from '../providers/provider.js';
import { deploymentView } from './deployment-view.js';
import { fromRow as sqliteFromRow, type Deployment, type DeploymentEvent, type DeploymentStatus, type ListFilter, type Row } from './deployments-repo.js';
import type { DeploymentsStore } from './deployments-store.js';

const j = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
const WHAT = 'deployment';
const MAX_CACHED = 100_000;

interface Cached {
  d: Deployment | null;
  json?: string;
  /** monotonic ms: an entry this node did not write itself is trusted this long */
  until: number;
}

export interface PgDeploymentsStoreOptions {
  invalidations?: Invalidations;
  /**
   * How long a cached latest deployment written by another node is served without asking the
   * database (invalidations are at most once: this bounds how stale a lost one leaves a read).
   */
  cacheMs?: number;
}

/**
 * DeploymentsStore on PostgreSQL. Every write is ONE statement (data-modifying CTEs): the fence's
 * lease check, the row and its event commit together or not at all, in one round trip. The
 * deployment's `writer_epoch` is a second guard: a writer at an older epoch never overwrites a
 * row a newer owner wrote. The latest deployment per NFT is cached: kept current by this node's
 * own writes (the owner's), dropped on another node's invalidation, and trusted at most `cacheMs`.
 */
export class PgDeploymentsStore implements DeploymentsStore {
  private readonly cache = new Map<string, Cached>();
  private readonly cacheMs: number;
  /** Writes of one deployment in flight, chained: they commit in the order they were made. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(private readonly sql: Sql, private readonly opts: PgDeploymentsStoreOptions = {}) {
    this.cacheMs = opts.cacheMs ?? 2000;
    opts.invalidations?.onInvalidate(WHAT, (nft) => this.forget(nft));
  }

  private hit(nft: string): Cached | undefined {
    const c = this.cache.get(nft);
    if (!c) return undefined;
    if (c.until < performance.now()) {
      this.cache.delete(nft);
      return undefined;
    }
    return c;
  }

  private remember(nft: string, d: Deployment | null): void {
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    // A copy: callers (the actor) mutate their object before saving it.
    this.cache.set(nft, { d: d && { ...d }, until: performance.now() + this.cacheMs });
  }

  /** After a committed write: this node's copy is the truth; the others drop theirs. */
  private wrote(nft: string, d: Deployment): void {
    this.remember(nft, d);
    this.opts.invalidations?.invalidate(WHAT, nft);
  }

  /**
   * Runs a write after the deployment's earlier writes committed: provider work saving a ref while
   * the actor's transition is in flight must land after it (SQLite gets this from being synchronous).
   */
  private serial<T>(id: string, write: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(id);
    const next = prev ? prev.then(write, write) : write();
    const tail = next.then(() => undefined, () => undefined);
    this.chains.set(id, tail);
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return next;
  }

  forget(nft: string): void {
    this.cache.delete(nft);
  }

  peekLatest(nft: string): Deployment | null | undefined {
    return this.hit(nft)?.d;
  }

  peekLatestViewJson(nft: string): string | null | undefined {
    const c = this.hit(nft);
    if (!c) return undefined;
    if (!c.d) return null;
    return (c.json ??= JSON.stringify(deploymentView(c.d)));
  }

  async latest(nft: string): Promise<Deployment | undefined> {
    const c = this.hit(nft);
    if (c) return c.d ?? undefined;
    const rows = await this.sql<Row[]>`SELECT * FROM deployments WHERE nft_token_id = ${nft} ORDER BY created_at DESC, row_order DESC LIMIT 1`;
    const d = rows[0] ? fromRow(rows[0]) : null;
    this.remember(nft, d);
    return d ?? undefined;
  }

  async latestViewJson(nft: string): Promise<string | undefined> {
    await this.latest(nft);
    return this.peekLatestViewJson(nft) ?? undefined;
  }

  async byId(id: string): Promise<Deployment | undefined> {
    const rows = await this.sql<Row[]>`SELECT * FROM deployments WHERE id = ${id}`;
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  insert(d: Deployment, message: string, fence?: Fence): Promise<DeploymentEvent> {
    return this.serial(d.id, () => this.insertNow(d, message, fence));
  }

  private async insertNow(d: Deployment, message: string, fence?: Fence): Promise<DeploymentEvent> {
    const epoch = fence?.epoch ?? 0;
    let rows: { id: number }[];
    try {
      rows = await this.sql<{ id: number }[]>`
        WITH f AS (${fenceCte(this.sql, fence)}),
        d AS (
          INSERT INTO deployments (id, nft_token_id, wallet, provider, status, progress, endpoint_url, resources, agent, provider_ref, details, error, health, created_at, updated_at, writer_epoch)
          SELECT ${d.id}::text, ${d.nft_token_id}::text, ${d.wallet}::text, ${d.provider}::text, ${d.status}::text, ${d.progress}::int, ${d.endpoint_url}::text,
            ${j(d.resources)}::text, ${j(d.agent)}::text, ${j(d.provider_ref)}::text, ${j(d.details)}::text, ${d.error}::text, ${j(d.health)}::text,
            ${d.created_at}::bigint, ${d.updated_at}::bigint, ${epoch}::bigint
          FROM f RETURNING id
        )
        INSERT INTO deployment_events (deployment_id, nft_token_id, status, progress, message, created_at, writer_epoch)
        SELECT d.id, ${d.nft_token_id}::text, ${d.status}::text, ${d.progress}::int, ${message}::text, ${d.updated_at}::bigint, ${epoch}::bigint FROM d
        RETURNING id`;
    } catch (e) {
      if ((e as { code?: string }).code === '23505') throw new ApiError('ALREADY_EXISTS', `NFT ${d.nft_token_id} already has an active deployment`);
      throw e;
    }
    checkFenced(rows.length, fence);
    if (rows.length === 0) throw new Error(`deployment ${d.id} was not inserted`);
    this.wrote(d.nft_token_id, d);
    return event(rows[0]!.id, d, message);
  }

  save(d: Deployment, message?: string, fence?: Fence): Promise<DeploymentEvent | undefined> {
    // The caller's object may change while the write waits its turn: write it as it is now.
    const snapshot = { ...d };
    return this.serial(d.id, () => this.saveNow(snapshot, message, fence));
  }

  private async saveNow(d: Deployment, message?: string, fence?: Fence): Promise<DeploymentEvent | undefined> {
    const epoch = fence?.epoch ?? 0;
    const [r] = await this.sql<{ updated: number; event_id: number | null }[]>`
      WITH f AS (${fenceCte(this.sql, fence)}),
      u AS (
        UPDATE deployments SET status = ${d.status}::text, progress = ${d.progress}::int, endpoint_url = ${d.endpoint_url}::text,
          provider_ref = ${j(d.provider_ref)}::text, details = ${j(d.details)}::text, error = ${d.error}::text, health = ${j(d.health)}::text,
          updated_at = ${d.updated_at}::bigint ${fence ? this.sql`, writer_epoch = ${epoch}::bigint` : this.sql``}
        FROM f WHERE id = ${d.id} ${fence ? this.sql`AND writer_epoch <= ${epoch}::bigint` : this.sql``}
        RETURNING id
      ),
      e AS (
        INSERT INTO deployment_events (deployment_id, nft_token_id, status, progress, message, created_at, writer_epoch)
        SELECT u.id, ${d.nft_token_id}::text, ${d.status}::text, ${d.progress}::int, ${message ?? ''}::text, ${d.updated_at}::bigint, ${epoch}::bigint
        FROM u WHERE ${message !== undefined}::bool
        RETURNING id
      )
      SELECT (SELECT count(*) FROM u) AS updated, (SELECT id FROM e) AS event_id`;
    checkFenced(r!.updated, fence);
    const cached = this.cache.get(d.nft_token_id);
    if (r!.updated > 0 && (!cached || cached.d?.id === d.id)) this.wrote(d.nft_token_id, d);
    return message === undefined || r!.event_id === null ? undefined : event(r!.event_id, d, message);
  }

  saveRef(nft: string, id: string, ref: ProviderRef | null, updatedAt: number, fence?: Fence): Promise<void> {
    return this.serial(id, () => this.saveRefNow(nft, id, ref, updatedAt, fence));
  }

  private async saveRefNow(nft: string, id: string, ref: ProviderRef | null, updatedAt: number, fence?: Fence): Promise<void> {
    const rows = await this.sql`
      WITH f AS (${fenceCte(this.sql, fence)})
      UPDATE deployments SET provider_ref = ${j(ref)}::text, updated_at = ${updatedAt}::bigint
      FROM f WHERE id = ${id} ${fence ? this.sql`AND writer_epoch <= ${fence.epoch}::bigint` : this.sql``}
      RETURNING 1`;
    checkFenced(rows.length, fence);
    const cached = this.cache.get(nft);
    if (cached?.d && cached.d.id === id) {
      cached.d.provider_ref = ref;
      cached.d.updated_at = updatedAt;
      cached.json = undefined;
      this.opts.invalidations?.invalidate(WHAT, nft);
    }
  }

  async events(deploymentId: string): Promise<DeploymentEvent[]> {
    return this.sql<DeploymentEvent[]>`
      SELECT id, deployment_id, nft_token_id, status, progress, message, created_at FROM deployment_events WHERE deployment_id = ${deploymentId} ORDER BY id`;
  }

  async activeCount(): Promise<number> {
    const [r] = await this.sql<{ n: number }[]>`SELECT count(*) AS n FROM deployments WHERE status IN ('pending','deploying','running','stopping')`;
    return r!.n;
  }

  async unfinishedNfts(): Promise<string[]> {
    const rows = await this.sql<{ nft_token_id: string }[]>`
      SELECT DISTINCT nft_token_id FROM deployments
      WHERE status IN ('pending','deploying','running','stopping') OR (status = 'failed' AND provider_ref IS NOT NULL)`;
    return rows.map((r) => r.nft_token_id);
  }

  async candidateNfts(wallet: string): Promise<string[]> {
    const rows = await this.sql<{ nft_token_id: string }[]>`
      SELECT nft_token_id FROM deployments WHERE wallet = ${wallet.toLowerCase()}
      UNION SELECT nft_token_id FROM sessions WHERE wallet = ${wallet}
      UNION SELECT nft_token_id FROM nft_owners WHERE lower(owner) = ${wallet.toLowerCase()}`;
    return rows.map((r) => r.nft_token_id);
  }

  async list(f: ListFilter): Promise<{ rows: Deployment[]; total: number }> {
    if (f.nfts.length === 0) return { rows: [], total: 0 };
    const sql = this.sql;
    const where = sql`nft_token_id = ANY(${f.nfts}::text[])
      ${f.status ? sql`AND status = ${f.status}` : sql``}
      ${f.provider ? sql`AND provider = ${f.provider}` : sql``}`;
    // sort and order come from a validated picklist, never from raw input.
    const dir = f.order === 'asc' ? sql`ASC` : sql`DESC`;
    const [[count], rows] = await Promise.all([
      sql<{ n: number }[]>`SELECT count(*) AS n FROM deployments WHERE ${where}`,
      sql<Row[]>`SELECT * FROM deployments WHERE ${where} ORDER BY ${sql(f.sort)} ${dir}, row_order ${dir} LIMIT ${f.limit} OFFSET ${f.offset}`,
    ]);
    return { rows: rows.map(fromRow), total: count!.n };
  }
}

/** The row without the PostgreSQL-only guard columns. */
function fromRow(r: Row & { writer_epoch?: number; row_order?: number }): Deployment {
  const { writer_epoch: _w, row_order: _o, ...rest } = r;
  return sqliteFromRow(rest);
}

function event(id: number, d: Deployment, message: string): DeploymentEvent {
  return { id, deployment_id: d.id, nft_token_id: d.nft_token_id, status: d.status as DeploymentStatus, progress: d.progress, message, created_at: d.updated_at };
}
