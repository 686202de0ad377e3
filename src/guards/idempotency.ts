import { createHash, randomUUID } from 'node:crypto';
import type { Db } from '../db/database.js';
import { ApiError } from '../errors.js';
import { json, type JsonReply } from '../server/route.js';
import type { IdempotencyKeyStore } from './idempotency-store.js';
import { SqliteIdempotencyStore } from './idempotency-store.sqlite.js';

/** An Idempotency-Key (or WS message_id): printable ASCII without spaces, as Stripe and the IETF draft allow. */
const KEY_RE = /^[\x21-\x7e]{1,255}$/;

export type Begin =
  /** First time: the caller runs the request, then calls complete() or release(). */
  | { kind: 'new' }
  /** Done before: answer this again. */
  | { kind: 'replay'; status: number; body: string; ref: string | null }
  /** The first request with this key is still running in this process. */
  | { kind: 'in_progress'; ref: string | null }
  /** The first request was cut by a restart before it finished: what it stored is in `ref` (a conversation). */
  | { kind: 'interrupted'; ref: string | null };

/**
 * Remembered results of writes sent with an idempotency key, scoped per wallet and route, for
 * `ttlMs` (SQLite, or PostgreSQL shared by every node). A retry with the same key and the same
 * request gets the first result and runs nothing; the same key with a different request is a
 * CONFLICT. A key is held ("pending") while its request runs; one whose request left nothing
 * (refused, or cancelled before the model started) is released, so a retry runs as a first
 * attempt.
 */
export class IdempotencyStore {
  private readonly store: IdempotencyKeyStore;
  /** This process: a pending key held by another (earlier) process was cut by a restart. */
  private readonly boot = randomUUID();
  private lastPurge = 0;

  /**
   * `sharedPendingMs`: in a cluster a pending key of another process may belong to a live node:
   * it counts as in progress for this long after it was taken (a node that died mid-request is
   * seen as interrupted after it). 0 (one process): another process's pending key is a restart's.
   */
  constructor(store: IdempotencyKeyStore | Db, private readonly now: () => number, private readonly ttlMs: number, private readonly sharedPendingMs = 0) {
    this.store = 'prepare' in store ? new SqliteIdempotencyStore(store) : store;
  }

  /** The key from a header or message field: undefined when absent, INVALID_FIELD when malformed. */
  static parseKey(value: string | undefined, field: string): string | undefined {
    if (value === undefined || value === '') return undefined;
    if (!KEY_RE.test(value)) throw new ApiError('INVALID_FIELD', `${field} must be 1 to 255 printable ASCII characters without spaces`, { field });
    return value;
  }

  static fingerprint(request: unknown): string {
    return createHash('sha256').update(JSON.stringify(request) ?? '').digest('base64url');
  }

  async begin(wallet: string, scope: string, key: string, fingerprint: string): Promise<Begin> {
    const w = wallet.toLowerCase();
    const now = this.now();
    if (now - this.lastPurge > 60_000) {
      this.lastPurge = now;
      await this.store.purge(now);
    }
    const row = await this.store.claim(w, scope, key, fingerprint, this.boot, now, now + this.ttlMs);
    if (!row) return { kind: 'new' };
    if (row.fingerprint !== fingerprint) {
      throw new ApiError('CONFLICT', 'This Idempotency-Key was already used with a different request', { idempotency_key: key });
    }
    if (row.state === 'done') return { kind: 'replay', status: row.status!, body: row.response!, ref: row.ref };
    const live = row.boot === this.boot || now - row.created_at < this.sharedPendingMs;
    return live ? { kind: 'in_progress', ref: row.ref } : { kind: 'interrupted', ref: row.ref };
  }

  /** Records what the request touched (a conversation id) as soon as it is known. */
  setRef(wallet: string, scope: string, key: string, ref: string): Promise<void> {
    return this.store.setRef(wallet.toLowerCase(), scope, key, ref);
  }

  complete(wallet: string, scope: string, key: string, status: number, body: string, ref?: string): Promise<void> {
    return this.store.complete(wallet.toLowerCase(), scope, key, status, body, ref ?? null);
  }

  release(wallet: string, scope: string, key: string): Promise<void> {
    return this.store.release(wallet.toLowerCase(), scope, key);
  }
}

/** The answer to a retry whose first request has not finished: 409 with what is known. */
export function notFinished(b: Extract<Begin, { kind: 'in_progress' | 'interrupted' }>, key: string): ApiError {
  return b.kind === 'in_progress'
    ? new ApiError('CONFLICT', 'A request with this Idempotency-Key is still in progress; retry shortly', { idempotency_key: key, state: 'in_progress', retry_after: 1, conversation_id: b.ref ?? undefined })
    : new ApiError('CONFLICT', 'A request with this Idempotency-Key was cut short by a restart; read back what it stored (the conversation history, the deployment) and send again with a new key', {
        idempotency_key: key, state: 'interrupted', conversation_id: b.ref ?? undefined,
      });
}

/**
 * Runs a JSON write at most once per key: a retry gets the first answer (with
 * `Idempotent-Replayed: true`). A write that throws left nothing: its key is released.
 */
export async function idempotentJson(
  store: IdempotencyStore, wallet: string, scope: string, key: string | undefined, request: unknown, run: () => Promise<JsonReply>,
): Promise<JsonReply> {
  if (!key) return run();
  const b = await store.begin(wallet, scope, key, IdempotencyStore.fingerprint(request));
  if (b.kind === 'replay') return json(b.status, JSON.parse(b.body), { 'Idempotent-Replayed': 'true' });
  if (b.kind !== 'new') throw notFinished(b, key);
  let out: JsonReply;
  try {
    out = await run();
  } catch (e) {
    await store.release(wallet, scope, key);
    throw e;
  }
  await store.complete(wallet, scope, key, out.status, JSON.stringify(out.body));
  return out;
}
