import { ApiError } from '../errors.js';

/** WebSocket close codes (4000-4999 are the application's, RFC 6455 section 7.4.2). */
export const WS_CLOSE_TOKEN_EXPIRED = 4001;
/** logout, refresh-token reuse: sign in again */
export const WS_CLOSE_SESSION_REVOKED = 4002;
/** the NFT changed hands: this wallet no longer owns it */
export const WS_CLOSE_OWNERSHIP_LOST = 4003;
export const WS_CLOSE_SLOW_CONSUMER = 4008;

/** One open WebSocket or SSE stream that a session's token opened. */
export interface LiveConnection {
  readonly kind: 'ws' | 'sse';
  /** Sends `error` as the last frame and closes (WS with `wsCode`); idempotent. */
  end(error: ApiError, wsCode: number): void;
}

/** Why a session ended, as a client sees it on its live connections. */
export interface EndReason {
  error: ApiError;
  wsCode: number;
}

/** The error and close code a live connection of a session revoked for `why` ends with. */
export function revocationReason(why: string): EndReason {
  if (why === 'ownership_lost') {
    return {
      error: new ApiError('FORBIDDEN', 'The NFT of this session changed hands; this wallet no longer owns it', { reason: why }),
      wsCode: WS_CLOSE_OWNERSHIP_LOST,
    };
  }
  return { error: new ApiError('UNAUTHORIZED', `The session of this token has ended (${why}); sign in again`, { reason: why }), wsCode: WS_CLOSE_SESSION_REVOKED };
}

/**
 * Live connections indexed by session id, so a revocation reaches every socket and stream the
 * session opened at once (the HTTP guard refuses its next request; these would otherwise keep
 * streaming until their token expires).
 */
/** How many ended sessions are remembered for connections that register late. */
const ENDED_REMEMBERED = 10_000;

export class LiveConnections {
  private readonly bySession = new Map<string, Set<LiveConnection>>();
  /**
   * Sessions ended lately (newest last, bounded): a stream whose request was authenticated just
   * before its session ended registers only after its handler's awaits, and must end too.
   */
  private readonly ended = new Map<string, EndReason>();

  /** Registers a connection; call the returned function when it closes. */
  add(sid: string, conn: LiveConnection): () => void {
    const gone = this.ended.get(sid);
    if (gone) {
      queueMicrotask(() => conn.end(gone.error, gone.wsCode));
      return () => {};
    }
    let set = this.bySession.get(sid);
    if (!set) this.bySession.set(sid, (set = new Set()));
    set.add(conn);
    return () => {
      const s = this.bySession.get(sid);
      if (!s) return;
      s.delete(conn);
      if (s.size === 0) this.bySession.delete(sid);
    };
  }

  /** Ends every live connection of a session; returns how many there were. */
  endSession(sid: string, reason: EndReason): number {
    this.ended.delete(sid);
    this.ended.set(sid, reason);
    if (this.ended.size > ENDED_REMEMBERED) this.ended.delete(this.ended.keys().next().value!);
    const set = this.bySession.get(sid);
    if (!set) return 0;
    this.bySession.delete(sid);
    for (const c of set) c.end(reason.error, reason.wsCode);
    return set.size;
  }

  count(sid: string): number {
    return this.bySession.get(sid)?.size ?? 0;
  }
}
