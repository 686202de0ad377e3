/**
 * Secrets every node of one deployment must share, by name: the JWT signing key
 * (`jwt-signing-key.json`) and the HMAC key of agent credentials (`agent-credential-key`).
 * `getOrCreate` returns the stored value, or stores `make()`'s and returns it; when two
 * processes (nodes) race, the first write wins and both return it.
 * One process: files in the data dir (mode 0600, created exclusively), as before.
 * Cluster: rows in PostgreSQL (`node_secrets`), AES-256-GCM encrypted under the operator's
 * PANTHERS_CLUSTER_SECRET (docs/cluster.md has the threat model).
 */
export interface SecretStore {
  getOrCreate(name: string, make: () => Promise<Buffer> | Buffer): Promise<Buffer>;
}
