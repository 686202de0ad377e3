import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/database.js';
import { ApiError } from '../errors.js';
import type { RequestVerifier } from '../server/http-server.js';
import type { AuthClaims } from '../server/route.js';
import type { SessionStore } from '../auth/session-store.js';
import { SqliteSessionStore } from '../auth/session-store.sqlite.js';
import type { ReplayStore } from './replay-store.js';
import { SqliteReplayStore } from './replay-store.sqlite.js';

/** How far X-Timestamp may be from the server's clock, either way. */
export const SIGNATURE_WINDOW_SEC = 300;

/** A fresh per-session HMAC key: 32 random bytes, hex. */
export function createSigningKey(): string {
  return randomBytes(32).toString('hex');
}

/**
 * The string a client signs, one field per line:
 *   timestamp \n METHOD \n path \n sha256hex(body)
 * `path` is the request target as sent: the path including /v1 (or the unprefixed alias, or
 * /v1/agents/{nft}/...) plus `?query` when there is one; an empty body hashes the empty string.
 */
export function signingString(method: string, path: string, body: string | Uint8Array, timestamp: number | string): string {
  const bodyHash = createHash('sha256').update(body).digest('hex');
  return `${timestamp}\n${method.toUpperCase()}\n${path}\n${bodyHash}`;
}

/**
 * The client side: X-Signature for a request. The key is the hex `signing_key` from
 * /auth/verify, used as raw bytes (openssl: `-macopt hexkey:$KEY`).
 */
export function signRequest(key: string, method: string, path: string, body: string | Uint8Array, timestamp: number | string): string {
  return createHmac('sha256', Buffer.from(key, 'hex')).update(signingString(method, path, body, timestamp)).digest('hex');
}

/** Stores a new signing key on a session and returns it (for the /auth/verify response). */
export async function issueSigningKey(sessions: Pick<SessionStore, 'setSigningKey'>, sessionId: string): Promise<string> {
  const key = createSigningKey();
  if (!(await sessions.setSigningKey(sessionId, key))) throw new Error(`no session ${sessionId} to attach a signing key to`);
  return key;
}

export interface HmacVerifierOptions {
  /** SQLite: both stores on this database (when `sessions`/`replay` are not given) */
  db?: Db;
  sessions?: Pick<SessionStore, 'signingKey'>;
  replay?: ReplayStore;
  now?: () => number;
  /** bound of the replay set; past it (all entries still live) signed requests are refused */
  maxSeen?: number;
}

const MAX_CACHED_KEYS = 100_000;

/**
 * Checks X-Timestamp and X-Signature on routes marked `signed`, against the signing key of the
 * caller's session. Each signature is accepted once: accepted signatures are stored
 * (`signature_replay`, so a restart does not reopen the window, and in a cluster every node
 * sees them) until their timestamp leaves the window, after which the timestamp check alone
 * refuses them. The set is bounded; when full of live entries it fails closed.
 */
export class HmacRequestVerifier implements RequestVerifier {
  private readonly sessions: Pick<SessionStore, 'signingKey'>;
  private readonly replay: ReplayStore;
  /** sid -> signing key: set once at sign-in, never changed (the guard has refused revoked sessions already) */
  private readonly keys = new Map<string, string>();
  private readonly now: () => number;
  private readonly maxSeen: number;
  private seenCount = -1;
  private nextSweep = 0;

  constructor(opts: HmacVerifierOptions) {
    if (!opts.db && (!opts.sessions || !opts.replay)) throw new Error('HmacRequestVerifier needs db or both stores');
    this.sessions = opts.sessions ?? new SqliteSessionStore(opts.db!);
    this.replay = opts.replay ?? new SqliteReplayStore(opts.db!);
    this.now = opts.now ?? Date.now;
    this.maxSeen = opts.maxSeen ?? 100_000;
  }

  async verify(req: { method: string; fullPath: string; body: Buffer; header(name: string): string | undefined; auth: AuthClaims }): Promise<void> {
    const sig = req.header('x-signature');
    const tsRaw = req.header('x-timestamp');
    if (!sig || !tsRaw) {
      throw new ApiError('INVALID_SIGNATURE', 'This operation requires X-Signature and X-Timestamp headers', { missing: [!sig && 'X-Signature', !tsRaw && 'X-Timestamp'].filter(Boolean) });
    }
    if (!/^\d{1,12}$/.test(tsRaw)) throw new ApiError('INVALID_SIGNATURE', 'X-Timestamp must be unix seconds');
    const ts = Number(tsRaw);
    const nowSec = Math.floor(this.now() / 1000);
    if (Math.abs(nowSec - ts) > SIGNATURE_WINDOW_SEC) {
      throw new ApiError('INVALID_SIGNATURE', `X-Timestamp is more than ${SIGNATURE_WINDOW_SEC} seconds from the server time`, { server_time: nowSec });
    }
    if (!/^[0-9a-fA-F]{64}$/.test(sig)) throw new ApiError('INVALID_SIGNATURE', 'X-Signature must be 64 hex characters');
    const key = await this.signingKey(req.auth.sid);
    if (!key) {
      throw new ApiError('INVALID_SIGNATURE', 'This session has no request-signing key; sign in again to get one');
    }
    const expected = Buffer.from(signRequest(key, req.method, req.fullPath, req.body, tsRaw), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) throw new ApiError('INVALID_SIGNATURE', 'X-Signature does not match the request');
    await this.remember(sig.toLowerCase(), ts + SIGNATURE_WINDOW_SEC, nowSec);
  }

  private async signingKey(sid: string): Promise<string | undefined> {
    const hit = this.keys.get(sid);
    if (hit) return hit;
    const key = await this.sessions.signingKey(sid);
    if (!key) return undefined;
    if (this.keys.size >= MAX_CACHED_KEYS) this.keys.clear();
    this.keys.set(sid, key);
    return key;
  }

  private async remember(id: string, expiresAt: number, nowSec: number): Promise<void> {
    if (this.seenCount < 0) this.seenCount = await this.replay.count();
    if (this.seenCount >= this.maxSeen || nowSec >= this.nextSweep) {
      this.seenCount = await this.replay.sweep(nowSec);
      this.nextSweep = nowSec + 30;
      if (this.seenCount >= this.maxSeen) {
        throw new ApiError('SERVICE_UNAVAILABLE', 'Too many signed requests in flight; retry shortly', { reason: 'replay_cache_full' });
      }
    }
    if (!(await this.replay.remember(id, expiresAt))) throw new ApiError('INVALID_SIGNATURE', 'This signature was already used (replay)');
    this.seenCount++;
  }

  /** Signatures remembered now by this node's count (for tests of the bound). */
  get size(): number {
    return Math.max(0, this.seenCount);
  }
}
