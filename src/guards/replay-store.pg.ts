import type { Sql } from '../db/pg.js';
import type { ReplayStore } from './replay-store.js';

/** ReplayStore on PostgreSQL: one INSERT ... ON CONFLICT DO NOTHING per signed request. */
export class PgReplayStore implements ReplayStore {
  constructor(private readonly sql: Sql) {}

  async remember(signature: string, expiresAt: number): Promise<boolean> {
    const r = await this.sql`INSERT INTO signature_replay (signature, expires_at) VALUES (${signature}, ${expiresAt}) ON CONFLICT DO NOTHING`;
    return r.count === 1;
  }

  async sweep(nowSec: number): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`WITH d AS (DELETE FROM signature_replay WHERE expires_at < ${nowSec} RETURNING 1)
      SELECT (SELECT count(*) FROM signature_replay)::int - (SELECT count(*) FROM d)::int AS n`;
    return Math.max(0, row!.n);
  }

  async count(): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM signature_replay`;
    return row!.n;
  }
}
