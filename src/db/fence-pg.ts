import type { Sql } from './pg.js';
import { FencedError, type Fence } from './fence.js';

/**
 * The lease check of a fenced PostgreSQL write, as a fragment for `WITH f AS (...)`: one row when
 * this node holds the shard at the fence's epoch (by the database's clock), none otherwise. FOR
 * SHARE holds the lease row until the write commits, so a claim (an UPDATE bumping the epoch)
 * waits for it: the check and the write cannot disagree (READ COMMITTED re-checks the row). The
 * write selects FROM f, so 0 rows means fenced. Without a fence: one row, always.
 */
export function fenceCte(sql: Sql, fence: Fence | undefined) {
  return fence
    ? sql`SELECT 1 AS ok FROM shard_leases WHERE shard = ${fence.shard} AND owner = ${fence.node} AND epoch = ${fence.epoch} AND expires_at > now() FOR SHARE`
    : sql`SELECT 1 AS ok`;
}

/** Throws FencedError when a fenced write touched nothing. */
export function checkFenced(rows: number, fence: Fence | undefined): void {
  if (fence && rows === 0) throw new FencedError(fence.shard, fence.epoch);
}
