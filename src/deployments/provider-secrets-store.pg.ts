import type { Sql } from '../db/pg.js';
import type { Fence } from '../db/fence.js';
import { checkFenced, fenceCte } from '../db/fence-pg.js';
import { openSecret, sealSecret } from './provider-secrets.js';
import type { ProviderSecretsStore } from './provider-secrets-store.js';

/**
 * ProviderSecretsStore on PostgreSQL: sealed on this node (the key never goes to the database),
 * each write one fenced statement.
 */
export class PgProviderSecretsStore implements ProviderSecretsStore {
  constructor(private readonly sql: Sql, private readonly key: () => Buffer) {}

  async get(deploymentId: string): Promise<string | undefined> {
    const [row] = await this.sql<{ value: Buffer }[]>`SELECT value FROM deployment_secrets WHERE deployment_id = ${deploymentId}`;
    return row ? openSecret(this.key(), deploymentId, row.value) : undefined;
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
