import type { Sql, TransactionSql } from 'postgres';
import { FencedError } from '../db/fence.js';

export { FencedError };

export interface Lease {
  shard: number;
  epoch: number;
  /** monotonic time (performance.now) until which this node may act on the lease */
  trustedUntil: number;
}

/** The lease table: PostgreSQL is the one truth, its clock decides expiry. */
export const LEASE_SCHEMA = `
CREATE TABLE IF NOT EXISTS shard_leases (
  shard      integer PRIMARY KEY,
  owner      text,
  epoch      bigint NOT NULL DEFAULT 0,
  expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO shard_leases (shard) SELECT g FROM generate_series(0, 255) g ON CONFLICT DO NOTHING;
`;

/**
 * When the lease's current epoch was claimed (migration 11): what an operator (and the fault
 * tests) read to tell a node's calls under its own new lease from calls made without one.
 */
export const LEASE_CLAIMED_AT = `ALTER TABLE shard_leases ADD COLUMN IF NOT EXISTS claimed_at timestamptz;`;

/**
 * One node's shard leases (shared/reference/cluster.md, "Single activation"): claim a free or
 * expired shard by bumping its epoch, renew every held shard in ONE statement, release on
 * drain. A node trusts a lease only until `sent_at + ttl - margin` on its own monotonic clock,
 * so a paused node stops acting before the database lets another node claim. Every owned
 * write is fenced by `fenced()`: the lease check and the write commit in one transaction, so a
 * node that lost its lease (paused, partitioned) cannot write (Kleppmann's fencing token).
 */
/** How long before the database's expiry a node stops trusting its lease: a fifth of the TTL, at most 1 s. */
export function trustMarginMs(ttlMs: number): number {
  return Math.min(1000, Math.floor(ttlMs / 5));
}

export class ShardLeases {
  private readonly held = new Map<number, Lease>();

  constructor(
    private readonly sql: Sql,
    readonly nodeId: string,
    readonly ttlMs = 5000,
    readonly marginMs = 1000,
  ) {}

  static async migrate(sql: Sql): Promise<void> {
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(7317001)`;
      await tx.unsafe(LEASE_SCHEMA + LEASE_CLAIMED_AT);
    });
  }

  /** The leases this node may act on now (trusted on its own clock). */
  leases(): Lease[] {
    const now = performance.now();
    return [...this.held.values()].filter((l) => l.trustedUntil > now);
  }

  lease(shard: number): Lease | undefined {
    const l = this.held.get(shard);
    return l && l.trustedUntil > performance.now() ? l : undefined;
  }

  /** Claims the shard if it is free or its lease expired; the new epoch, or undefined. */
  async claim(shard: number): Promise<Lease | undefined> {
    const sentAt = performance.now();
    const rows = await this.sql<{ epoch: string }[]>`
      UPDATE shard_leases SET owner = ${this.nodeId}, epoch = epoch + 1, expires_at = now() + ${this.ttlMs} * interval '1 millisecond', claimed_at = now()
      WHERE shard = ${shard} AND (owner IS NULL OR owner = ${this.nodeId} AND epoch = ${this.held.get(shard)?.epoch ?? -1} OR expires_at < now())
      RETURNING epoch`;
    if (rows.length === 0) return undefined;
    const lease = { shard, epoch: Number(rows[0]!.epoch), trustedUntil: sentAt + this.ttlMs - this.marginMs };
    this.held.set(shard, lease);
    return lease;
  }

  /**
   * Renews every held shard in one statement. Shards that did not renew (claimed by another
   * node after an expiry) are dropped and returned, for the caller to passivate at once.
   */
  async renew(): Promise<number[]> {
    if (this.held.size === 0) return [];
    const sentAt = performance.now();
    const shards = [...this.held.keys()];
    const epochs = shards.map((s) => this.held.get(s)!.epoch);
    const rows = await this.sql<{ shard: number }[]>`
      UPDATE shard_leases l SET expires_at = now() + ${this.ttlMs} * interval '1 millisecond'
      FROM unnest(${shards}::int[], ${epochs}::bigint[]) AS h(shard, epoch)
      WHERE l.shard = h.shard AND l.owner = ${this.nodeId} AND l.epoch = h.epoch AND l.expires_at > now()
      RETURNING l.shard`;
    const renewed = new Set(rows.map((r) => r.shard));
    const lost: number[] = [];
    for (const s of shards) {
      if (renewed.has(s)) this.held.get(s)!.trustedUntil = sentAt + this.ttlMs - this.marginMs;
      else {
        this.held.delete(s);
        lost.push(s);
      }
    }
    return lost;
  }

  /** Gives the shard up (drain, SIGTERM): only at the epoch this node holds. */
  async release(shard: number): Promise<void> {
    const l = this.held.get(shard);
    if (!l) return;
    this.held.delete(shard);
    await this.sql`UPDATE shard_leases SET owner = NULL, expires_at = '-infinity' WHERE shard = ${shard} AND owner = ${this.nodeId} AND epoch = ${l.epoch}`;
  }

  async releaseAll(): Promise<void> {
    for (const s of [...this.held.keys()]) await this.release(s);
  }

  /**
   * Runs `write` in a transaction that first takes the lease row FOR SHARE at the held epoch:
   * if this node no longer holds it (by the database's clock), nothing is written and
   * FencedError is thrown. FOR SHARE blocks a concurrent claim until the write commits.
   */
  async fenced<T>(shard: number, write: (tx: TransactionSql) => Promise<T>): Promise<T> {
    const l = this.held.get(shard);
    if (!l || l.trustedUntil <= performance.now()) throw new FencedError(shard, l?.epoch ?? -1);
    return (await this.sql.begin(async (tx) => {
      const ok = await tx`SELECT 1 FROM shard_leases WHERE shard = ${shard} AND owner = ${this.nodeId} AND epoch = ${l.epoch} AND expires_at > now() FOR SHARE`;
      if (ok.length === 0) throw new FencedError(shard, l.epoch);
      return write(tx);
    })) as T;
  }
}
