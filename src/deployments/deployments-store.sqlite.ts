import type { Db } from '../db/database.js';
import { ApiError } from '../errors.js';
import type { ProviderRef } from '../providers/provider.js';
import { DeploymentsRepo, type Deployment, type DeploymentEvent, type ListFilter } from './deployments-repo.js';
import type { DeploymentsStore } from './deployments-store.js';

/**
 * DeploymentsStore on SQLite: DeploymentsRepo's statements, synchronous inside (one process is the
 * only writer: fences are ignored); each promise is already settled when returned.
 */
export class SqliteDeploymentsStore implements DeploymentsStore {
  readonly repo: DeploymentsRepo;

  constructor(db: Db) {
    this.repo = new DeploymentsRepo(db);
  }

  peekLatest(nft: string): Deployment | null {
    return this.repo.latestForNft(nft) ?? null;
  }

  peekLatestViewJson(nft: string): string | null {
    return this.repo.latestViewJson(nft) ?? null;
  }

  async latest(nft: string): Promise<Deployment | undefined> {
    return this.repo.latestForNft(nft);
  }

  async latestViewJson(nft: string): Promise<string | undefined> {
    return this.repo.latestViewJson(nft);
  }

  async byId(id: string): Promise<Deployment | undefined> {
    return this.repo.byId(id);
  }

  async insert(d: Deployment, message: string): Promise<DeploymentEvent> {
    try {
      return this.repo.insert(d, message);
    } catch (e) {
      // The partial unique index is the last word on "one active deployment per NFT".
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new ApiError('ALREADY_EXISTS', `NFT ${d.nft_token_id} already has an active deployment`);
      throw e;
    }
  }

  async save(d: Deployment, message?: string): Promise<DeploymentEvent | undefined> {
    return this.repo.save(d, message);
  }

  async saveRef(nft: string, id: string, ref: ProviderRef | null, updatedAt: number): Promise<void> {
    this.repo.saveRef(nft, id, ref, updatedAt);
  }

  async events(deploymentId: string): Promise<DeploymentEvent[]> {
    return this.repo.events(deploymentId);
  }

  async activeCount(): Promise<number> {
    return this.repo.activeCount();
  }

  async unfinishedNfts(): Promise<string[]> {
    return this.repo.unfinishedNfts();
  }

  async candidateNfts(wallet: string): Promise<string[]> {
    return this.repo.candidateNfts(wallet);
  }

  async list(f: ListFilter): Promise<{ rows: Deployment[]; total: number }> {
    return this.repo.list(f);
  }

  forget(): void {
    // One writer, always in this process: the cache is never stale.
  }
}
