import { call, useCredentials, ApiError } from './api';
import { createStore } from './store';

/**
 * The session, in memory only (no localStorage, no cookie): a reload signs out, a stolen
 * disk or an XSS-free page leaves nothing to take. The access token is refreshed a minute
 * before it expires (refresh tokens rotate); an ended session sends the holder back to sign in
 * with the server's reason.
 */
export interface Session {
  accessToken: string;
  refreshToken: string;
  /** ms since epoch */
  expiresAt: number;
  sessionId: string;
  signingKey?: string;
  wallet: string;
  nft: string;
  walletName: string;
}

export interface SessionState {
  session?: Session;
  /** Why the last session ended (shown on the sign-in screen). */
  ended?: { code: string; message: string };
}

export const sessionStore = createStore<SessionState>({});

const tokenListeners = new Set<(token: string | undefined) => void>();
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<boolean> | undefined;

/** Runs whenever the access token changes (new, refreshed, or gone). */
export function onToken(fn: (token: string | undefined) => void): () => void {
  tokenListeners.add(fn);
  return () => void tokenListeners.delete(fn);
}

function announce(): void {
  const t = sessionStore.get().session?.accessToken;
  for (const l of [...tokenListeners]) l(t);
}

useCredentials({
  accessToken: () => sessionStore.get().session?.accessToken,
  signingKey: () => sessionStore.get().session?.signingKey,
  refresh: () => refresh(),
});

export interface VerifyAnswer {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  session_id: string;
  signing_key?: string;
}

export function startSession(v: VerifyAnswer, wallet: string, nft: string, walletName: string): void {
  sessionStore.set({
    session: {
      accessToken: v.access_token, refreshToken: v.refresh_token, expiresAt: Date.now() + v.expires_in * 1000,
      sessionId: v.session_id, signingKey: v.signing_key, wallet, nft, walletName,
    },
    ended: undefined,
  });
  schedule();
  announce();
}

/** A minute before expiry (or at 80% of a short lifetime). */
function schedule(): void {
  clearTimeout(refreshTimer);
  const s = sessionStore.get().session;
  if (!s) return;
  const life = s.expiresAt - Date.now();
  const wait = Math.max(1000, life > 120_000 ? life - 60_000 : life * 0.8);
  refreshTimer = setTimeout(() => void refresh(), wait);
}

/** Trades the refresh token for new tokens; one at a time. False when the session is over. */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    const s = sessionStore.get().session;
    if (!s) return false;
    try {
      const r = await call<{ access_token: string; refresh_token: string; expires_in: number }>('POST', '/v1/auth/refresh', {
        body: { refresh_token: s.refreshToken }, auth: false,
      });
      const cur = sessionStore.get().session;
      if (!cur || cur.sessionId !== s.sessionId) return false;
      sessionStore.set({ session: { ...cur, accessToken: r.access_token, refreshToken: r.refresh_token, expiresAt: Date.now() + r.expires_in * 1000 } });
      schedule();
      announce();
      return true;
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError('INTERNAL_ERROR', String(e), 0);
      if (err.code === 'NETWORK_ERROR' || err.code === 'RATE_LIMITED' || err.code === 'SERVICE_UNAVAILABLE') {
        // Transient: try again shortly while the access token still works.
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(() => void refresh(), Math.max(5000, (err.retryAfter ?? 0) * 1000));
        return false;
      }
      endSession(err.code, `${err.message}. Sign in again.`);
      return false;
    }
  })().finally(() => {
    refreshing = undefined;
  });
  return refreshing;
}

/** Forgets the session locally (the server already ended it, or refused it). */
export function endSession(code: string, message: string): void {
  clearTimeout(refreshTimer);
  if (!sessionStore.get().session) return;
  sessionStore.set({ session: undefined, ended: { code, message } });
  announce();
}

/** An authenticated call answered UNAUTHORIZED: the session is over (revoked or expired). */
export function sessionRefused(e: unknown): boolean {
  if (e instanceof ApiError && e.status === 401 && sessionStore.get().session) {
    endSession(e.code, `${e.message}. Sign in again.`);
    return true;
  }
  return false;
}

export async function logout(): Promise<void> {
  const s = sessionStore.get().session;
  try {
    if (s) await call('POST', '/v1/auth/logout');
  } catch {
    // Revoked already, or the server is away: forget the tokens here either way.
  }
  clearTimeout(refreshTimer);
  sessionStore.set({ session: undefined, ended: undefined });
  announce();
}
