/** A remembered key's row (`idempotency_keys`). */
export interface IdempotencyRow {
  fingerprint: string;
  state: 'pending' | 'done';
  /** the process that holds it while pending */
  boot: string;
  status: number | null;
  response: string | null;
  ref: string | null;
  created_at: number;
  expires_at: number;
}

/**
 * Results of writes sent with an idempotency key, per wallet + scope + key. `claim` is
 * check-and-take in one atomic step: it inserts a pending row (replacing an expired one) and
 * answers `undefined`, or answers the live row someone else holds, so two requests with one
 * key, on one node or two, never both run.
 */
export interface IdempotencyKeyStore {
  claim(wallet: string, scope: string, key: string, fingerprint: string, boot: string, now: number, expiresAt: number): Promise<IdempotencyRow | undefined>;
  setRef(wallet: string, scope: string, key: string, ref: string): Promise<void>;
  complete(wallet: string, scope: string, key: string, status: number, body: string, ref: string | null): Promise<void>;
  /** Deletes the key if still pending (its request left nothing). */
  release(wallet: string, scope: string, key: string): Promise<void>;
  purge(now: number): Promise<void>;
}
