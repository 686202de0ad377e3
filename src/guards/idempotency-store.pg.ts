import type { Sql } from '../db/pg.js';
import type { IdempotencyKeyStore, IdempotencyRow } from './idempotency-store.js';

/**
 * IdempotencyKeyStore on PostgreSQL. claim: one upsert that only replaces an expired row
 * (a live one is left alone and nothing is returned), then, when it did not take the key, one
 * read of the row that holds it.
 */
export class PgIdempotencyStore implements IdempotencyKeyStore {
  constructor(private readonly sql: Sql) {}

  async claim(w: string, scope: string, key: string, fp: string, boot: string, now: number, expiresAt: number): Promise<IdempotencyRow | undefined> {
    for (let attempt = 0; ; attempt++) {
      const took = await this.sql`INSERT INTO idempotency_keys (wallet, scope, key, fingerprint, state, boot, created_at, expires_at)
        VALUES (${w}, ${scope}, ${key}, ${fp}, 'pending', ${boot}, ${now}, ${expiresAt})
        ON CONFLICT (wallet, scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'pending', boot = excluded.boot,
          status = NULL, response = NULL, ref = NULL, created_at = excluded.created_at, expires_at = excluded.expires_at
        WHERE idempotency_keys.expires_at <= ${now}
        RETURNING 1`;
      if (took.count === 1) return undefined;
      const [row] = await this.sql<IdempotencyRow[]>`SELECT fingerprint, state, boot, status, response, ref, created_at, expires_at
        FROM idempotency_keys WHERE wallet = ${w} AND scope = ${scope} AND key = ${key}`;
      // Released between the two statements: try to take it again (bounded).
      if (row || attempt >= 2) return row;
    }
  }

  async setRef(w: string, scope: string, key: string, ref: string): Promise<void> {
    await this.sql`UPDATE idempotency_keys SET ref = ${ref} WHERE wallet = ${w} AND scope = ${scope} AND key = ${key}`;
  }

  async complete(w: string, scope: string, key: string, status: number, body: string, ref: string | null): Promise<void> {
    await this.sql`UPDATE idempotency_keys SET state = 'done', status = ${status}, response = ${body}, ref = coalesce(${ref}::text, ref)
      WHERE wallet = ${w} AND scope = ${scope} AND key = ${key}`;
  }

  async release(w: string, scope: string, key: string): Promise<void> {
    await this.sql`DELETE FROM idempotency_keys WHERE wallet = ${w} AND scope = ${scope} AND key = ${key} AND state = 'pending'`;
  }

  async purge(now: number): Promise<void> {
    await this.sql`DELETE FROM idempotency_keys WHERE expires_at <= ${now}`;
  }
}
