import type { Sql } from '../db/pg.js';
import type { Fence } from '../db/fence.js';
import { checkFenced, fenceCte } from '../db/fence-pg.js';
import { openSecret, sealSecret } from './provider-secrets.js';
import type { ProviderSecretsStore } from './provider-secrets-store.js';

/**
 * ProviderSecretsStore on PostgreSQL: sealed on the node (the key never goes to the database),
 * each write one fenced statement. `keys()[0]` seals; every key of the list is tried to open, so
 * rows sealed under an earlier key (the data dir's key file, before the cluster secret) still open.
 */
export class PgProviderSecretsStore implements ProviderSecretsStore {
  constructor(private readonly sql: Sql, private readonly keys: () => readonly Buffer[]) {}

  private key(): Buffer {
    return this.keys()[0]!;
  }

  async get(deploymentId: string): Promise<string | undefined> {
    const [row] = await this.sql<{ value: Buffer }[]>`SELECT value FROM deployment_secrets WHERE deployment_id = ${deploymentId}`;
    if (!row) return undefined;
    for (const k of this.keys()) {
      const v = openSecret(k, deploymentId, row.value);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  async set(deploymentId: string, value: string | null, fence?: Fence): Promise<void> {
    const sql = this.sql;
    if (value === null) {
      const [r] = await sql<{ ok: number }[]>`
        WITH f AS (${fenceCte(sql, fence)}),
        d AS (DELETE FROM deployment_secrets USING f WHERE deployment_id = ${deploymentId} RETURNING 1)
        SELECT count(*)::int AS ok FROM f`;
      checkFenced(r!.ok, fence);
      return;
    }
    const rows = await sql`
      WITH f AS (${fenceCte(sql, fence)})
      INSERT INTO deployment_secrets (deployment_id, value, updated_at)
      SELECT ${deploymentId}::text, ${sealSecret(this.key(), deploymentId, value)}::bytea, ${Date.now()}::bigint FROM f
      ON CONFLICT (deployment_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
      RETURNING 1`;
    checkFenced(rows.length, fence);
  }
}
