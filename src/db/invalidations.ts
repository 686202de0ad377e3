/**
 * How a store's synchronous cache learns that another node changed a row (cluster mode: a NATS
 * message on `panthers.invalidate.<what>`, src/cluster/invalidations.ts). At most once: caches that
 * rely on it also bound an entry's age. In SQLite mode there is no other writer and none is given.
 */
export interface Invalidations {
  /** Tells the other nodes that `key` of `what` changed (after the write committed). */
  invalidate(what: string, key: string): void;
  /** Calls `drop(key)` when another node changed `key` of `what`. */
  onInvalidate(what: string, drop: (key: string) => void): void;
}
