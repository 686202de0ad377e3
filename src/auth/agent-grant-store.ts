/** A deployment as agent credentials see it (a read-only view of `deployments`). */
export interface CredentialDeployment {
  id: string;
  nft_token_id: string;
  status: string;
  endpoint_url: string | null;
}

/**
 * Agent-scoped token state: which sessions hold an agent token for which NFT
 * (`agent_token_grants`), per-NFT cut-offs (`agent_token_cutoffs`, only ever raised), and the
 * read-only deployment views the credential checks need.
 */
export interface AgentGrantStore {
  /** Remembers that `sid` holds an agent token for `nft` until `expiresAt` (keeps the later expiry). */
  grant(nft: string, sid: string, expiresAt: number): Promise<void>;
  /** Ids of revoked sessions holding an unexpired agent token for `nft`. */
  revokedSessions(nft: string, now: number): Promise<string[]>;
  /** Wallets holding an unexpired agent token for `nft`. */
  holders(nft: string, now: number): Promise<string[]>;
  prune(now: number): Promise<void>;
  /** The cut-off of `nft` in ms, 0 when none. */
  cutoff(nft: string): Promise<number>;
  /** Raises the cut-off of `nft` to `at` (never lowers it). */
  raiseCutoff(nft: string, at: number): Promise<void>;
  deployment(id: string): Promise<CredentialDeployment | undefined>;
  latestDeployment(nft: string): Promise<(CredentialDeployment & { provider: string }) | undefined>;
}
