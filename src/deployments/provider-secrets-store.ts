import type { Fence } from '../db/fence.js';

/**
 * What a provider adapter keeps across a restart but may not put in provider_ref (the Akash
 * manifest carries the agent's secrets), sealed with AES-256-GCM under the data dir's key file
 * (provider-secrets.ts), so a copy of the database alone reveals nothing. The storage seam:
 * provider-secrets-store.sqlite.ts (ProviderSecrets), .pg.ts; contract in
 * test/stores/provider-secrets.contract.ts. Written by the NFT's DeploymentActor: `set` takes its fence.
 */
export interface ProviderSecretsStore {
  /** The value, or undefined when none was saved (or it does not open with this node's key). */
  get(deploymentId: string): Promise<string | undefined>;
  /** Saves the value; null deletes it. */
  set(deploymentId: string, value: string | null, fence?: Fence): Promise<void>;
}
