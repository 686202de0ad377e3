import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/database.js';
import { ApiError } from '../errors.js';
import type { RequestVerifier } from '../server/http-server.js';
import type { AuthClaims } from '../server/route.js';

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
export function issueSigningKey(db: Db, sessionId: string): string {
  const key = createSigningKey();
  const r = db.prepare('UPDATE sessions SET signing_key = ? WHERE id = ?').run(key, sessionId);
  if (r.changes !== 1) throw new Error(`no session ${sessionId} to attach a signing key to`);
  return key;
}

export interface HmacVerifierOptions {
  db: Db;
  now?: () => number;
  /** bound of the replay set; past it (all entries still live) signed requests are refused */
  maxSeen?: number;
}

/**
 * Checks X-Timestamp and X-Signature on routes marked `signed`, against the signing key of the
 * caller's session. Each signature is accepted once: accepted signatures are stored in SQLite
 * (`signature_replay`, so a restart does not reopen the window) until their timestamp leaves
 * the window, after which the timestamp check alone refuses them. The set is bounded; when
 * full of live entries it fails closed.
 */
export class HmacRequestVerifier implements RequestVerifier {
  private readonly keyLookup;
  private readonly insertSeen;
  private readonly sweepSeen;
  private readonly countSeen;
  private readonly now: () => number;
  private readonly maxSeen: number;
  private seenCount: number;
  private nextSweep = 0;

  constructor(opts: HmacVerifierOptions) {
    this.keyLookup = opts.db.prepare('SELECT signing_key FROM sessions WHERE id = ? AND revoked_at IS NULL');
    // A signature already present is a replay: the primary key makes check-and-remember one step.
    this.insertSeen = opts.db.prepare('INSERT OR IGNORE INTO signature_replay (signature, expires_at) VALUES (?, ?)');
    this.sweepSeen = opts.db.prepare('DELETE FROM signature_replay WHERE expires_at < ?');
    this.countSeen = opts.db.prepare('SELECT count(*) AS n FROM signature_replay');
    this.now = opts.now ?? Date.now;
    this.maxSeen = opts.maxSeen ?? 100_000;
    this.seenCount = (this.countSeen.get() as { n: number }).n;
  }

  verify(req: { method: string; fullPath: string; body: Buffer; header(name: string): string | undefined; auth: AuthClaims }): void {
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
    const row = this.keyLookup.get(req.auth.sid) as { signing_key: string | null } | undefined;
    if (!row?.signing_key) {
      throw new ApiError('INVALID_SIGNATURE', 'This session has no request-signing key; sign in again to get one');
    }
    const expected = Buffer.from(signRequest(row.signing_key, req.method, req.fullPath, req.body, tsRaw), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) throw new ApiError('INVALID_SIGNATURE', 'X-Signature does not match the request');
    this.remember(sig.toLowerCase(), ts + SIGNATURE_WINDOW_SEC, nowSec);
  }

  private remember(id: string, expiresAt: number, nowSec: number): void {
    if (this.seenCount >= this.maxSeen || nowSec >= this.nextSweep) {
      this.seenCount -= this.sweepSeen.run(nowSec).changes;
      this.nextSweep = nowSec + 30;
      if (this.seenCount >= this.maxSeen) {
        throw new ApiError('SERVICE_UNAVAILABLE', 'Too many signed requests in flight; retry shortly', { reason: 'replay_cache_full' });
      }
    }
    if (this.insertSeen.run(id, expiresAt).changes === 0) throw new ApiError('INVALID_SIGNATURE', 'This signature was already used (replay)');
    this.seenCount++;
  }

  /** Signatures remembered now (for tests of the bound). */
  get size(): number {
    return this.seenCount;
  }
}
