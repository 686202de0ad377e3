import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../db/database.js';

export const PROVIDER_SECRETS_KEY_FILE = 'provider-secrets.key';

/**
 * What a provider adapter must keep across a restart but may not put in provider_ref because it
 * is secret (the Akash manifest carries the agent's env, model keys included). Encrypted with
 * AES-256-GCM under a key file of its own in the data dir (0600), so a copy of the database alone
 * (a backup, a `.dump` in a bug report) reveals nothing; the deployment id is the associated data,
 * so a row moved to another deployment does not decrypt. Rows are deleted as soon as the adapter
 * says so (after the Akash lease) and when the deployment ends.
 */
export class ProviderSecrets {
  private key: Buffer | undefined;
  private readonly stmts;

  constructor(private readonly db: Db, private readonly dataDir: string) {
    this.stmts = {
      get: db.prepare<[string], { value: Buffer }>('SELECT value FROM deployment_secrets WHERE deployment_id = ?'),
      put: db.prepare('INSERT OR REPLACE INTO deployment_secrets (deployment_id, value, updated_at) VALUES (?, ?, ?)'),
      del: db.prepare('DELETE FROM deployment_secrets WHERE deployment_id = ?'),
    };
  }

  get(deploymentId: string): string | undefined {
    const row = this.stmts.get.get(deploymentId);
    return row ? openSecret(this.keyBytes(), deploymentId, row.value) : undefined;
  }

  set(deploymentId: string, value: string | null): void {
    if (value === null) {
      this.stmts.del.run(deploymentId);
      return;
    }
    this.stmts.put.run(deploymentId, sealSecret(this.keyBytes(), deploymentId, value), Date.now());
  }

  private keyBytes(): Buffer {
    return (this.key ??= loadSecretsKey(this.dataDir));
  }
}

/** AES-256-GCM under `key`, the deployment id as associated data: iv (12) | tag (16) | body. */
export function sealSecret(key: Buffer, deploymentId: string, value: string): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(deploymentId));
  const body = Buffer.concat([c.update(value, 'utf8'), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]);
}

/** The sealed value, or undefined when it does not open with this key (as if never saved). */
export function openSecret(key: Buffer, deploymentId: string, blob: Buffer): string | undefined {
  try {
    const d = createDecipheriv('aes-256-gcm', key, blob.subarray(0, 12));
    d.setAAD(Buffer.from(deploymentId));
    d.setAuthTag(blob.subarray(12, 28));
    return Buffer.concat([d.update(blob.subarray(28)), d.final()]).toString('utf8');
  } catch {
    return undefined; // another key (data dir restored without it): as if never saved
  }
}

/**
 * Cluster mode: the provider-secrets key every node derives from PANTHERS_CLUSTER_SECRET
 * (HKDF-SHA256, its own info string, so it differs from the node_secrets key). The node that
 * takes an NFT over must open the manifest the previous owner sealed (an Akash deployment waiting
 * for bids is leased with it; without it the new owner closes it and creates a second one).
 */
export function clusterSecretsKey(clusterSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', clusterSecret, 'secret-panthers', 'deployment_secrets/v1', 32));
}

/**
 * The key file in the data dir, created (0600) on first use. In cluster mode it only opens rows
 * sealed before the cluster secret was set (`clusterSecretsKey` seals).
 */
export function loadSecretsKey(dataDir: string): Buffer {
  const file = path.join(dataDir, PROVIDER_SECRETS_KEY_FILE);
  try {
    const k = fs.readFileSync(file);
    if (k.length === 32) return k;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const k = randomBytes(32);
  // wx: two processes starting at once must not each write a different key.
  try {
    fs.writeFileSync(file, k, { mode: 0o600, flag: 'wx' });
    return k;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return fs.readFileSync(file);
  }
}
