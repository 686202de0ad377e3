import { ApiError } from '../errors.js';

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

/** `details.reason` of an answer meaning "this node does not own the NFT now": nothing was done, retry at the owner. */
export const NOT_OWNER = 'not_owner';

/** True for the answer of an actor whose write was fenced or which was evicted with its shard. */
export function isNotOwner(e: unknown): boolean {
  return e instanceof ApiError && e.code === 'SERVICE_UNAVAILABLE' && e.details?.reason === NOT_OWNER;
}

/**
 * What an actor answers when a write was fenced: the node no longer owns the NFT, so the request
 * is to be retried (by the client, or by the cluster directory once the new owner serves the
 * shard). An ApiError, so the actor answers it instead of crashing; its in-memory state is
 * unchanged (taken only after a committed write), and the lease loop passivates the shard.
 * Any other error is returned as it is.
 */
export function fencedAsApiError(e: unknown): unknown {
  return e instanceof FencedError ? new ApiError('SERVICE_UNAVAILABLE', 'This node no longer owns this NFT (its shard lease moved); try again', { reason: NOT_OWNER }) : e;
}

/** Passes a handler's result through, turning a FencedError (thrown or rejected) into fencedAsApiError's answer. */
export function answerFenced<T>(run: () => T): T {
  let out: T;
  try {
    out = run();
  } catch (e) {
    throw fencedAsApiError(e);
  }
  // Only a real promise costs a hop: synchronous answers stay synchronous.
  if (out !== null && typeof out === 'object' && typeof (out as unknown as Promise<unknown>).then === 'function') {
    return (out as unknown as Promise<unknown>).then(undefined, (e: unknown) => {
      throw fencedAsApiError(e);
    }) as unknown as T;
  }
  return out;
}
