import type { Db } from '../db/database.js';
import { deploymentView } from './deployment-view.js';
import type { AgentSettings, ProviderName, ProviderRef, Resources, HealthReport } from '../providers/provider.js';

export type DeploymentStatus = 'pending' | 'deploying' | 'running' | 'stopping' | 'stopped' | 'failed';
export const ACTIVE_STATUSES: readonly DeploymentStatus[] = ['pending', 'deploying', 'running', 'stopping'];
export const DEPLOYMENT_STATUSES: readonly DeploymentStatus[] = ['pending', 'deploying', 'running', 'stopping', 'stopped', 'failed'];

export interface Health extends HealthReport {
  checked_at: string;
}

export interface Deployment {
  id: string;
  nft_token_id: string;
  wallet: string;
  provider: ProviderName;
  status: DeploymentStatus;
  progress: number;
  endpoint_url: string | null;
  resources: Resources;
  agent: AgentSettings;
  provider_ref: ProviderRef | null;
  details: Record<string, unknown> | null;
  error: string | null;
  health: Health | null;
  created_at: number;
  updated_at: number;
}

export interface DeploymentEvent {
  id: number;
  deployment_id: string;
  nft_token_id: string;
  status: DeploymentStatus;
  progress: number;
  message: string;
  created_at: number;
}

export interface ListFilter {
  /** the NFTs whose deployments are listed (those the caller owns now) */
  nfts: string[];
  status?: DeploymentStatus;
  provider?: ProviderName;
  sort: 'created_at' | 'status' | 'nft_token_id';
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

/** A deployments row as stored (JSON columns as text): shared by the SQLite and PostgreSQL stores. */
export interface Row {
  id: string; nft_token_id: string; wallet: string; provider: string; status: string; progress: number;
  endpoint_url: string | null; resources: string; agent: string; provider_ref: string | null; details: string | null;
  error: string | null; health: string | null; created_at: number; updated_at: number;
}

export function fromRow(r: Row): Deployment {
  return {
    ...r,
    provider: r.provider as ProviderName,
    status: r.status as DeploymentStatus,
    resources: JSON.parse(r.resources),
    agent: JSON.parse(r.agent),
    provider_ref: r.provider_ref ? JSON.parse(r.provider_ref) : null,
    details: r.details ? JSON.parse(r.details) : null,
    health: r.health ? JSON.parse(r.health) : null,
  };
}

const j = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

/**
 * SQL for the deployments and deployment_events tables. Written only by DeploymentActors, all in
 * this process, so the latest deployment per NFT is also kept in a bounded in-memory map that
 * every write updates: the hot read (GET /deployments/{nft}) costs a Map lookup, not a query.
 */
export class DeploymentsRepo {
  private readonly stmts;
  private readonly latest = new Map<string, Deployment | null>();
  /** The API rendering of each cached deployment, made on first read after a change. */
  private readonly latestJson = new Map<string, string>();
  private static readonly MAX_CACHED = 100_000;

  constructor(private readonly db: Db) {
    this.stmts = {
      latest: db.prepare<[string], Row>('SELECT * FROM deployments WHERE nft_token_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1'),
      byId: db.prepare<[string], Row>('SELECT * FROM deployments WHERE id = ?'),
      insert: db.prepare(
        `INSERT INTO deployments (id, nft_token_id, wallet, provider, status, progress, endpoint_url, resources, agent, provider_ref, details, error, health, created_at, updated_at)
         VALUES (@id, @nft_token_id, @wallet, @provider, @status, @progress, @endpoint_url, @resources, @agent, @provider_ref, @details, @error, @health, @created_at, @updated_at)`,
      ),
      update: db.prepare(
        `UPDATE deployments SET status = @status, progress = @progress, endpoint_url = @endpoint_url, provider_ref = @provider_ref,
         details = @details, error = @error, health = @health, updated_at = @updated_at WHERE id = @id`,
      ),
      saveRef: db.prepare('UPDATE deployments SET provider_ref = ?, updated_at = ? WHERE id = ?'),
      event: db.prepare(
        'INSERT INTO deployment_events (deployment_id, nft_token_id, status, progress, message, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      events: db.prepare<[string], DeploymentEvent>('SELECT * FROM deployment_events WHERE deployment_id = ? ORDER BY id'),
      active: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM deployments WHERE status IN ('pending','deploying','running','stopping')`),
      // Failed ones that still hold a provider ref too: their release is retried.
      unfinished: db.prepare<[], { nft_token_id: string }>(
        `SELECT DISTINCT nft_token_id FROM deployments
         WHERE status IN ('pending','deploying','running','stopping') OR (status = 'failed' AND provider_ref IS NOT NULL)`,
      ),
    };
  }

  latestForNft(nft: string): Deployment | undefined {
    const hit = this.latest.get(nft);
    if (hit !== undefined) return hit ?? undefined;
    const r = this.stmts.latest.get(nft);
    const d = r ? fromRow(r) : null;
    this.remember(nft, d);
    return d ?? undefined;
  }

  /** Drops the cached latest deployment of an NFT (cluster mode: another node changed it). */
  forget(nft: string): void {
    this.latest.delete(nft);
    this.latestJson.delete(nft);
  }

  /** The latest deployment of an NFT as the API's JSON, or undefined if it was never deployed. */
  latestViewJson(nft: string): string | undefined {
    const cached = this.latestJson.get(nft);
    if (cached !== undefined) return cached;
    const d = this.latestForNft(nft);
    if (!d) return undefined;
    const json = JSON.stringify(deploymentView(d));
    this.latestJson.set(nft, json);
    return json;
  }

  private remember(nft: string, d: Deployment | null): void {
    this.latestJson.delete(nft);
    if (this.latest.size >= DeploymentsRepo.MAX_CACHED) {
      this.latest.clear();
      this.latestJson.clear();
    }
    // A copy: callers (the actor) mutate their object before saving it.
    this.latest.set(nft, d && { ...d });
  }

  byId(id: string): Deployment | undefined {
    const r = this.stmts.byId.get(id);
    return r ? fromRow(r) : undefined;
  }

  /** Inserts a deployment and its first event in one transaction. */
  insert(d: Deployment, message: string): DeploymentEvent {
    return this.db.transaction(() => {
      this.stmts.insert.run({
        ...d, resources: j(d.resources), agent: j(d.agent), provider_ref: j(d.provider_ref), details: j(d.details), health: j(d.health),
      });
      const ev = this.appendEvent(d, message);
      this.remember(d.nft_token_id, d);
      return ev;
    }).immediate();
  }

  /** Saves the deployment's mutable fields and, with a message, appends a transition event. */
  save(d: Deployment, message?: string): DeploymentEvent | undefined {
    return this.db.transaction(() => {
      this.stmts.update.run({
        id: d.id, status: d.status, progress: d.progress, endpoint_url: d.endpoint_url, provider_ref: j(d.provider_ref),
        details: j(d.details), error: d.error, health: j(d.health), updated_at: d.updated_at,
      });
      const ev = message === undefined ? undefined : this.appendEvent(d, message);
      if (this.latest.get(d.nft_token_id)?.id === d.id || !this.latest.has(d.nft_token_id)) this.remember(d.nft_token_id, d);
      return ev;
    }).immediate();
  }

  /**
   * Writes only the provider reference of a deployment. Provider work calls it the moment a
   * resource exists, outside the actor's message order, so it touches nothing else.
   */
  saveRef(nft: string, id: string, ref: ProviderRef | null, updatedAt: number): void {
    this.stmts.saveRef.run(j(ref), updatedAt, id);
    const cached = this.latest.get(nft);
    if (cached && cached.id === id) {
      cached.provider_ref = ref;
      cached.updated_at = updatedAt;
      this.latestJson.delete(nft);
    }
  }

  private appendEvent(d: Deployment, message: string): DeploymentEvent {
    const info = this.stmts.event.run(d.id, d.nft_token_id, d.status, d.progress, message, d.updated_at);
    return {
      id: Number(info.lastInsertRowid), deployment_id: d.id, nft_token_id: d.nft_token_id, status: d.status,
      progress: d.progress, message, created_at: d.updated_at,
    };
  }

  events(deploymentId: string): DeploymentEvent[] {
    return this.stmts.events.all(deploymentId);
  }

  activeCount(): number {
    return this.stmts.active.get()!.n;
  }

  /** NFTs whose deployment was interrupted mid-lifecycle or still holds a resource to release (restart recovery). */
  unfinishedNfts(): string[] {
    return this.stmts.unfinished.all().map((r) => r.nft_token_id);
  }

  /**
   * NFTs a wallet may own, to be confirmed with the ownership verifier: those it deployed, those
   * it signed in for, and those the registry table names it the owner of.
   */
  candidateNfts(wallet: string): string[] {
    return this.db.prepare(
      `SELECT nft_token_id FROM deployments WHERE wallet = ?
       UNION SELECT nft_token_id FROM sessions WHERE wallet = ?
       UNION SELECT nft_token_id FROM nft_owners WHERE lower(owner) = ?`,
    ).pluck().all(wallet.toLowerCase(), wallet, wallet.toLowerCase()) as string[];
  }

  /** Deployments of the given NFTs (whoever made them), filtered, sorted and paged. */
  list(f: ListFilter): { rows: Deployment[]; total: number } {
    if (f.nfts.length === 0) return { rows: [], total: 0 };
    const where = [`nft_token_id IN (${f.nfts.map(() => '?').join(',')})`];
    const args: unknown[] = [...f.nfts];
    if (f.status) {
      where.push('status = ?');
      args.push(f.status);
    }
    if (f.provider) {
      where.push('provider = ?');
      args.push(f.provider);
    }
    const w = where.join(' AND ');
    // sort and order come from a validated picklist, never from raw input.
    const order = `${f.sort} ${f.order === 'asc' ? 'ASC' : 'DESC'}, rowid ${f.order === 'asc' ? 'ASC' : 'DESC'}`;
    const total = (this.db.prepare(`SELECT count(*) AS n FROM deployments WHERE ${w}`).get(...args) as { n: number }).n;
    const rows = this.db.prepare(`SELECT * FROM deployments WHERE ${w} ORDER BY ${order} LIMIT ? OFFSET ?`).all(...args, f.limit, f.offset) as Row[];
    return { rows: rows.map(fromRow), total };
  }
}
