import type { Fence } from '../db/fence.js';
import type { ProviderRef } from '../providers/provider.js';
import type { Deployment, DeploymentEvent, ListFilter } from './deployments-repo.js';

export type { Deployment, DeploymentEvent, DeploymentStatus, ListFilter, Health } from './deployments-repo.js';
export { ACTIVE_STATUSES, DEPLOYMENT_STATUSES } from './deployments-repo.js';

/**
 * Deployments and their events (the storage seam: deployments-store.sqlite.ts, .pg.ts; contract in
 * test/stores/deployments.contract.ts). Written only by an NFT's DeploymentActor, so every write
 * takes the actor's `fence` (ignored by SQLite; in PostgreSQL the lease check and the write
 * commit together, else FencedError and nothing is written). Resolves only after commit.
 *
 * The latest deployment per NFT is cached in memory for the hot read (GET /deployments/{nft}):
 * `peek*` answer synchronously from the cache, `undefined` meaning "not known here, await
 * latest()". SQLite's peek always knows (a synchronous query on a miss).
 */
export interface DeploymentsStore {
  /** The latest deployment of an NFT: `null` when never deployed, `undefined` when not cached. */
  peekLatest(nft: string): Deployment | null | undefined;
  /** The API JSON of the latest deployment: `null` when never deployed, `undefined` when not cached. */
  peekLatestViewJson(nft: string): string | null | undefined;
  latest(nft: string): Promise<Deployment | undefined>;
  latestViewJson(nft: string): Promise<string | undefined>;
  byId(id: string): Promise<Deployment | undefined>;
  /**
   * Inserts a deployment and its first event atomically. A second live deployment of the NFT is
   * refused by the database (ApiError ALREADY_EXISTS).
   */
  insert(d: Deployment, message: string, fence?: Fence): Promise<DeploymentEvent>;
  /** Saves the deployment's mutable fields and, with a message, appends a transition event, atomically. */
  save(d: Deployment, message?: string, fence?: Fence): Promise<DeploymentEvent | undefined>;
  /** Writes only the provider reference (provider work calls it the moment a resource exists). */
  saveRef(nft: string, id: string, ref: ProviderRef | null, updatedAt: number, fence?: Fence): Promise<void>;
  events(deploymentId: string): Promise<DeploymentEvent[]>;
  activeCount(): Promise<number>;
  /** NFTs whose deployment was interrupted mid-lifecycle or still holds a resource to release. */
  unfinishedNfts(): Promise<string[]>;
  /** NFTs a wallet may own (deployed, signed in for, named owner in the registry): to confirm. */
  candidateNfts(wallet: string): Promise<string[]>;
  /** Deployments of the given NFTs, filtered, sorted and paged. */
  list(f: ListFilter): Promise<{ rows: Deployment[]; total: number }>;
  /** Drops the cached latest deployment of an NFT (another node changed it). */
  forget(nft: string): void;
}
