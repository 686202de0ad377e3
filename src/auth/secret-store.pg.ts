import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { Sql } from '../db/pg.js';
import type { SecretStore } from './secret-store.js';

/** The shortest PANTHERS_CLUSTER_SECRET accepted (characters). */
export const MIN_CLUSTER_SECRET = 32;

/**
 * SecretStore in PostgreSQL (`node_secrets`). The first node to start inserts its freshly made
 * value with ON CONFLICT DO NOTHING; every node then reads the one row, so all sign with the
 * same key. Values are AES-256-GCM encrypted under a key derived (HKDF-SHA256) from the
 * operator's cluster secret, with the name as associated data: a database dump or backup
 * alone does not reveal the signing key (it cannot be used to mint tokens), and a row copied
 * under another name does not decrypt.
 */
export class PgSecretStore implements SecretStore {
  private readonly key: Buffer;

  constructor(private readonly sql: Sql, clusterSecret: string, private readonly now: () => number = Date.now) {
    if (clusterSecret.length < MIN_CLUSTER_SECRET) {
      throw new Error(`PANTHERS_CLUSTER_SECRET must be at least ${MIN_CLUSTER_SECRET} characters (it encrypts the shared signing keys)`);
    }
    this.key = Buffer.from(hkdfSync('sha256', clusterSecret, 'secret-panthers', 'node_secrets/v1', 32));
  }

  /** Which secret this store decrypts with (for an error that names a mismatch, never the key). */
  get keyId(): string {
    return createHash('sha256').update(this.key).digest('hex').slice(0, 8);
  }

  async getOrCreate(name: string, make: () => Promise<Buffer> | Buffer): Promise<Buffer> {
    let [row] = await this.sql<{ value: Buffer }[]>`SELECT value FROM node_secrets WHERE name = ${name}`;
    if (!row) {
      const value = await make();
      await this.sql`INSERT INTO node_secrets (name, value, created_at) VALUES (${name}, ${this.seal(name, value)}, ${this.now()}) ON CONFLICT (name) DO NOTHING`;
      [row] = await this.sql<{ value: Buffer }[]>`SELECT value FROM node_secrets WHERE name = ${name}`;
    }
    return this.open(name, row!.value);
  }

  private seal(name: string, value: Buffer): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(name));
    const body = Buffer.concat([c.update(value), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  }

  private open(name: string, blob: Buffer): Buffer {
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, blob.subarray(0, 12));
      d.setAAD(Buffer.from(name));
      d.setAuthTag(blob.subarray(12, 28));
      return Buffer.concat([d.update(blob.subarray(28)), d.final()]);
    } catch {
      // Refuse to start rather than mint a second key: the nodes would reject each other's tokens.
      throw new Error(`node secret ${name} does not decrypt with this PANTHERS_CLUSTER_SECRET (key id ${this.keyId}): every node must use the same secret`);
    }
  }
}
