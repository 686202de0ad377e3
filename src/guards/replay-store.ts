/**
 * The replay set of HMAC-signed requests (`signature_replay`): a signature is accepted once.
 * `remember` is check-and-remember in one step (the primary key; PostgreSQL: ON CONFLICT DO
 * NOTHING), so the same request sent to two nodes at once is accepted by exactly one.
 */
export interface ReplayStore {
  /** true: first sight (now remembered until `expiresAt`, unix seconds); false: a replay. */
  remember(signature: string, expiresAt: number): Promise<boolean>;
  /** Forgets signatures that expired before `nowSec`; returns how many are remembered now. */
  sweep(nowSec: number): Promise<number>;
  count(): Promise<number>;
}
