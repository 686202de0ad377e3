/**
 * A fencing token (shared/reference/cluster.md, "Fencing"): the shard lease this node held when an
 * owned actor decided to write. PostgreSQL stores check it against the lease row in the SAME
 * statement or transaction as the write; SQLite stores (one process, one writer) ignore it.
 */
export interface Fence {
  shard: number;
  epoch: number;
  node: string;
}

/** A write was refused because this node no longer holds the shard's lease at that epoch. */
export class FencedError extends Error {
  constructor(readonly shard: number, readonly epoch: number) {
    super(`shard ${shard} is no longer held at epoch ${epoch}`);
    this.name = 'FencedError';
  }
}
