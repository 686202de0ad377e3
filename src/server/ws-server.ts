import { randomUUID } from 'node:crypto';
import { arrivedOverHttps } from './https-rule.js';
import * as v from 'valibot';
import type { TemplatedApp, WebSocket } from './uws.js';
import { ApiError, toApiError } from '../errors.js';
import type { Config, RateClass } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { RateDecision, RateLimiter } from '../guards/rate-limiter.js';
import type { AuthClaims } from './route.js';
import { validate } from './validation.js';
import type { AuditEntry, AuditSink } from './http-server.js';
import { wsMaxPayload } from '../agents/chat-message.js';
import { STATUS_LINES } from './status-lines.js';
import {
  WS_CLOSE_OWNERSHIP_LOST, WS_CLOSE_SESSION_REVOKED, WS_CLOSE_SLOW_CONSUMER, WS_CLOSE_TOKEN_EXPIRED, type LiveConnections,
} from './live-connections.js';

export { WS_CLOSE_OWNERSHIP_LOST, WS_CLOSE_SESSION_REVOKED, WS_CLOSE_SLOW_CONSUMER, WS_CLOSE_TOKEN_EXPIRED };

/** What a WS message handler sees of its socket: plain operations, no uWS types. */
export interface WsConn {
  readonly id: string;
  readonly auth: AuthClaims;
  /** Sends one frame (a pre-serialized string or an object to serialize). False when dropped. */
  send(frame: string | object): boolean;
  /** Follows `topic`; false when this socket already follows it (or is closed). */
  subscribe(topic: string): boolean;
  /**
   * Sends `frame` to this socket alone, as send() does, but through `topic` when this socket is
   * the topic's only follower here: uWS holds a topic's frames until the end of the loop
   * iteration and writes each socket's in one go, so the frame leaves with the topic's next one
   * (a `subscribed` with its turn's first chunk: one write instead of two). uWS drains a
   * socket's topic frames before any direct send, so the order with send() holds.
   */
  sendAlong(topic: string, frame: string | object): boolean;
  unsubscribe(topic: string): boolean;
  isSubscribed(topic: string): boolean;
  /** Runs once when the socket closes (for any reason). The returned function unregisters it. */
  onClose(cb: () => void): () => void;
  readonly closed: boolean;
}

export interface WsMessageHandler<T = any> {
  schema: v.GenericSchema<unknown, T>;
  rateClass: RateClass;
  handle(conn: WsConn, msg: T): void | Promise<void>;
}

/**
 * Told when this server's sockets start and stop following a topic (cluster mode: the node
 * follows the topic's NATS subject while it has local followers). Ref-counting is the hook's.
 */
export interface TopicHooks {
  follow(topic: string): void;
  unfollow(topic: string): void;
}

/** The one seam for fan-out (uWS topics in one process; uWS + NATS in cluster mode). */
export interface Publisher {
  publish(topic: string, frame: string): void;
  /**
   * Followers of `topic`. The chat path renders and publishes a chunk only when this is above 0,
   * so a publisher that relays to other nodes counts a topic followed there too.
   */
  subscribers(topic: string): number;
  /**
   * How many subscriptions sockets here have made so far (it only grows). A 0 from
   * subscribers(topic) holds until this changes, so a caller per chunk asks uWS again only then
   * (the topic lookup in C++ cost more than rendering the frame; see followerCheck).
   */
  readonly subscriptions: number;
  /** Unsubscribes the sockets on `topic` whose claims `keep` refuses, telling each with `frame`. */
  dropSubscribers?(topic: string, keep: (auth: AuthClaims) => boolean, frame: object): number;
}

interface UserData {
  conn?: Conn;
  auth: AuthClaims;
  /** kept to re-check the session on every message through the same guard as HTTP */
  token: string;
  ip: string;
  /** lower-cased wallet: the key of the per-wallet socket count */
  wallet: string;
}

/** Numbers the sockets of this process (for logs): randomUUID() is a 14-part cons string per socket. */
let connSeq = 0;

class Conn implements WsConn {
  readonly id = (++connSeq).toString(36);
  closed = false;
  /** When the token expires (ms since the epoch): the sweep closes the socket then, no timer per socket. */
  readonly expiresAt: number;
  unregister: (() => void) | undefined;
  // A Set: a callback per turn in flight, removed when the turn ends (a long-lived socket that
  // runs many turns must not keep one closure and AbortController per past turn).
  private closeCbs: Set<() => void> | undefined;
  /** topics followed, only when hooks want to know (cluster mode) */
  private topics: Set<string> | undefined;

  constructor(
    readonly ws: WebSocket<UserData>, readonly auth: AuthClaims, readonly ip: string, private readonly onDrop: () => void,
    private readonly onSubscribe: () => void,
    private readonly app: Pick<TemplatedApp, 'publish' | 'numSubscribers'>,
    private readonly hooks?: TopicHooks,
  ) {
    this.expiresAt = auth.exp * 1000;
  }

  send(frame: string | object): boolean {
    if (this.closed) return false;
    const s = typeof frame === 'string' ? frame : JSON.stringify(frame);
    const r = this.ws.send(s, false, false);
    if (r === 2) {
      this.onDrop();
      return false;
    }
    return true;
  }

  subscribe(topic: string): boolean {
    if (this.closed || this.ws.isSubscribed(topic)) return false;
    this.onSubscribe();
    if (this.hooks) {
      (this.topics ??= new Set()).add(topic);
      this.hooks.follow(topic);
    }
    this.ws.subscribe(topic);
    return true;
  }

  sendAlong(topic: string, frame: string | object): boolean {
    if (this.closed) return false;
    // Local followers only (app.publish does not relay to other nodes): one, and it is this socket.
    if (this.app.numSubscribers(topic) !== 1 || !this.ws.isSubscribed(topic)) return this.send(frame);
    this.app.publish(topic, typeof frame === 'string' ? frame : JSON.stringify(frame), false, false);
    return true;
  }

  unsubscribe(topic: string): boolean {
    if (this.closed) return false;
    const was = this.ws.unsubscribe(topic);
    if (this.topics?.delete(topic)) this.hooks!.unfollow(topic);
    return was;
  }

  isSubscribed(topic: string): boolean {
    return this.closed ? false : this.ws.isSubscribed(topic);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.ws.end(code, reason);
  }

  onClose(cb: () => void): () => void {
    if (this.closed) {
      cb();
      return noop;
    }
    const cbs = (this.closeCbs ??= new Set());
    cbs.add(cb);
    return () => cbs.delete(cb);
  }

  /** Called by the server's close handler. */
  markClosed(): void {
    this.closed = true;
    if (this.topics) for (const t of this.topics) this.hooks!.unfollow(t);
    this.topics = undefined;
    const cbs = this.closeCbs;
    this.closeCbs = undefined;
    if (cbs) for (const cb of cbs) cb();
  }
}

function noop(): void {}

/**
 * How often every socket is looked at (token expiry, slow readers): one timer for all of them
 * instead of a Timeout per socket; a socket outlives its token by at most this long.
 */
const SWEEP_MS = 500;

export interface WsServerDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  authenticate(token: string): Promise<AuthClaims>;
  rateLimiter?: RateLimiter;
  audit?: AuditSink;
  /** the index a session revocation uses to end this server's sockets of that session */
  live?: LiveConnections;
  handlers: Record<string, WsMessageHandler>;
  clientIp(ip: string, headers: Record<string, string>): string;
}

const envelope = v.object({ type: v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty')) });

function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n > 0) m.set(key, n);
  else m.delete(key);
}

function rateLimited(d: RateDecision, message: string): ApiError {
  return new ApiError('RATE_LIMITED', message, { class: 'other', limit: d.limit, retry_after: d.retryAfter, reset: d.reset });
}

function rateHeaders(d: RateDecision): Record<string, string> {
  return { 'Retry-After': String(Math.max(1, d.retryAfter || d.reset - Math.floor(Date.now() / 1000))), 'X-RateLimit-Limit': String(d.limit), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(d.reset) };
}

/** 429 for a socket past its cap: says which cap, its value and the setting that raises it. */
function tooManySockets(scope: 'wallet' | 'address', limit: number, setting: string): ApiError {
  return new ApiError('RATE_LIMITED', `This ${scope} already has ${limit} open WebSockets, the most allowed (${setting}); close one first`, {
    reason: 'too_many_connections', scope: scope === 'wallet' ? 'wallet' : 'ip', limit,
  });
}

export function errorFrame(e: ApiError, type?: string): string {
  return JSON.stringify({ type: 'error', request_type: type, error: { code: e.code, message: e.message, details: e.details } });
}

/**
 * The `/ws` endpoint: token checked at the upgrade (401 with the spec's error body otherwise),
 * messages validated and dispatched by `type`, rate limited by class, closed when the token
 * expires, and slow readers cut off before their buffers grow without bound.
 */
export class WsServer implements Publisher {
  private app: TemplatedApp | undefined;
  /** Cluster mode sets this before listening: sockets following topics are reported to it. */
  topicHooks: TopicHooks | undefined;
  private readonly conns = new Set<Conn>();
  private sweep: NodeJS.Timeout | undefined;
  // Open sockets, plus upgrades between their token check and open, per wallet and per IP.
  private readonly perWallet = new Map<string, number>();
  private readonly perIp = new Map<string, number>();
  private readonly pendingPerIp = new Map<string, number>();

  constructor(private readonly deps: WsServerDeps) {}

  attach(app: TemplatedApp): void {
    this.app = app;
    const { config, metrics, log } = this.deps;
    app.ws<UserData>('/ws', {
      maxPayloadLength: wsMaxPayload(config.maxMessageChars),
      idleTimeout: config.wsIdleTimeoutSec,
      sendPingsAutomatically: true,
      // Past this many buffered bytes uWS drops further frames for the socket; the sweep below
      // closes such a socket so that it cannot stay subscribed and silently miss chunks.
      maxBackpressure: config.wsMaxBufferedBytes,
      closeOnBackpressureLimit: 0,
      upgrade: (res, req, context) => {
        const token = new URLSearchParams(req.getQuery() ?? '').get('token') ?? '';
        const key = req.getHeader('sec-websocket-key');
        const protocol = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const headers: Record<string, string> = { 'x-forwarded-for': req.getHeader('x-forwarded-for'), 'x-forwarded-proto': req.getHeader('x-forwarded-proto') };
        const peer = Buffer.from(res.getRemoteAddressAsText()).toString();
        const ip = this.deps.clientIp(peer, headers);
        const started = performance.now();
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        const refuse = (e: ApiError, reason: string, auth?: AuthClaims, extra?: Record<string, string>) => {
          metrics.wsRefused.labels(reason).inc();
          if (aborted) return;
          res.cork(() => {
            res.writeStatus(STATUS_LINES[e.status]!).writeHeader('Content-Type', 'application/json');
            if (extra) for (const k in extra) res.writeHeader(k, extra[k]!);
            res.end(JSON.stringify(e.toBody()));
          });
          // A refusal that did nothing (limits, plain HTTP) is counted in aggregate; a bad token is a row.
          this.auditWs(ip, auth, e.status, started, reason !== 'unauthorized');
        };
        if (!this.accepting) return refuse(new ApiError('SERVICE_UNAVAILABLE', 'The server is shutting down'), 'shutting_down');
        // The same rule as HTTP: in production only HTTPS, i.e. wss:// through a trusted proxy
        // (or the provider's ingress a remote agent sits behind).
        if (config.env === 'production' && !arrivedOverHttps(config, peer, headers['x-forwarded-proto'])) {
          return refuse(new ApiError('FORBIDDEN', 'HTTPS is required: plain ws:// upgrades are refused in production', { https_required: true }), 'https_required');
        }
        const limiter = this.deps.rateLimiter;
        // Failed tokens count per IP, as on HTTP: past the limit the IP is refused before any check.
        const ipKey = `ip:${ip}`;
        const failures = limiter?.peek('other', ipKey);
        if (failures && failures.remaining === 0) return refuse(rateLimited(failures, 'Too many failed connection attempts from this address'), 'rate_limited', undefined, rateHeaders(failures));
        const openIp = (this.perIp.get(ip) ?? 0) + (this.pendingPerIp.get(ip) ?? 0);
        if (openIp >= config.wsMaxPerIp) {
          return refuse(tooManySockets('address', config.wsMaxPerIp, 'PANTHERS_WS_MAX_PER_IP'), 'ip_cap');
        }
        const failed = (e: ApiError) => {
          limiter?.take('other', ipKey);
          refuse(e, 'unauthorized');
        };
        if (!token) return failed(new ApiError('UNAUTHORIZED', 'Missing token query parameter'));
        bump(this.pendingPerIp, ip, 1);
        this.deps.authenticate(token).then(
          (auth) => {
            bump(this.pendingPerIp, ip, -1);
            if (aborted) return;
            const wallet = auth.sub.toLowerCase();
            const d = limiter?.take('other', `w:${wallet}`);
            if (d && !d.ok) {
              metrics.rateLimited.labels('other').inc();
              return refuse(rateLimited(d, 'Too many connection attempts'), 'rate_limited', auth, rateHeaders(d));
            }
            if ((this.perWallet.get(wallet) ?? 0) >= config.wsMaxPerWallet) {
              return refuse(tooManySockets('wallet', config.wsMaxPerWallet, 'PANTHERS_WS_MAX_PER_WALLET'), 'wallet_cap', auth);
            }
            if ((this.perIp.get(ip) ?? 0) >= config.wsMaxPerIp) {
              return refuse(tooManySockets('address', config.wsMaxPerIp, 'PANTHERS_WS_MAX_PER_IP'), 'ip_cap', auth);
            }
            // Counted before upgrade() (which runs open() at once); close() gives the slot back.
            bump(this.perWallet, wallet, 1);
            bump(this.perIp, ip, 1);
            res.cork(() => res.upgrade<UserData>({ auth, token, ip, wallet }, key, protocol, extensions, context));
            this.auditWs(ip, auth, 101, started);
          },
          (e) => {
            bump(this.pendingPerIp, ip, -1);
            failed(toApiError(e));
          },
        );
      },
      open: (ws) => {
        const data = ws.getUserData();
        const conn = new Conn(ws, data.auth, data.ip, () => metrics.wsSlowConsumers.labels('dropped').inc(), this.countSubscription, app, this.topicHooks);
        data.conn = conn;
        this.conns.add(conn);
        conn.unregister = this.deps.live?.add(data.auth.sid, {
          kind: 'ws',
          end: (error, code) => this.end(conn, error, code),
        });
        metrics.wsConnections.inc();
        // Closed by the sweep once its token expires (within SWEEP_MS), not by a timer of its own.
      },
      message: (ws, message) => {
        const data = ws.getUserData();
        const conn = data.conn!;
        this.onMessage(conn, data.token, Buffer.from(message).toString('utf8')).catch((e) => {
          log.error({ err: e }, 'ws handler failed');
          conn.send(errorFrame(toApiError(e)));
        });
      },
      close: (ws) => {
        const data = ws.getUserData();
        bump(this.perWallet, data.wallet, -1);
        bump(this.perIp, data.ip, -1);
        const conn = data.conn;
        if (!conn) return;
        conn.unregister?.();
        conn.markClosed();
        this.conns.delete(conn);
        metrics.wsConnections.dec();
      },
    });
    this.sweep = setInterval(() => this.sweepConns(), SWEEP_MS);
    this.sweep.unref();
  }

  /** Sends `error` as the socket's last frame and closes it with `code` (the reason names the error). */
  private end(conn: Conn, error: ApiError, code: number): void {
    if (conn.closed) return;
    conn.send(errorFrame(error));
    const reason = typeof error.details.reason === 'string' ? error.details.reason : error.code.toLowerCase();
    conn.close(code, reason.slice(0, 120));
  }

  private async onMessage(conn: Conn, token: string, text: string): Promise<void> {
    const started = performance.now();
    // Every message re-checks the session through the guard HTTP uses (two cached lookups): a
    // session revoked in another process, or one whose token expired, stops here too.
    try {
      await this.deps.authenticate(token);
    } catch (e) {
      const err = toApiError(e);
      if (err.code === 'SERVICE_UNAVAILABLE') {
        conn.send(errorFrame(err));
        return;
      }
      const code = err.code === 'TOKEN_EXPIRED' ? WS_CLOSE_TOKEN_EXPIRED : err.code === 'FORBIDDEN' ? WS_CLOSE_OWNERSHIP_LOST : WS_CLOSE_SESSION_REVOKED;
      this.end(conn, err, code);
      return;
    }
    if (conn.closed) return;
    let type: string | undefined;
    let nft: string | undefined;
    let refused = false;
    try {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const isObject = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed);
      const t = isObject ? (parsed as { type?: unknown }).type : undefined;
      if (t === 'ping') {
        // Keep-alive: neither limited nor audited (it touches nothing).
        conn.send('{"type":"pong"}');
        return;
      }
      const handler = typeof t === 'string' && Object.hasOwn(this.deps.handlers, t) ? this.deps.handlers[t] : undefined;
      if (handler) type = t as string;
      // Every other message counts, malformed ones too (in `other`), before any work.
      try {
        this.limit(conn, handler?.rateClass ?? 'other');
      } catch (e) {
        refused = true;
        throw e;
      }
      if (!isObject) throw new ApiError('INVALID_REQUEST', 'Messages must be JSON objects');
      type = validate(envelope, parsed, 'message').type;
      if (!handler) {
        throw new ApiError('INVALID_FIELD', `Unknown message type "${type}"`, { field: 'type', allowed: ['ping', ...Object.keys(this.deps.handlers)] });
      }
      const msg = validate(handler.schema, parsed, 'message');
      nft = typeof (msg as { nft_token_id?: unknown }).nft_token_id === 'string' ? (msg as { nft_token_id: string }).nft_token_id : undefined;
      await handler.handle(conn, msg);
      this.auditMessage(conn, type, nft, 200, started, false);
    } catch (e) {
      const err = toApiError(e);
      if (err.code === 'INTERNAL_ERROR' && !(e instanceof ApiError)) this.deps.log.error({ err: e, type }, 'ws message failed');
      conn.send(errorFrame(err, type));
      this.auditMessage(conn, type, nft, err.status, started, refused);
    }
  }

  /** Counts a message against its class for the socket's wallet; throws RATE_LIMITED past it. */
  private limit(conn: Conn, cls: RateClass): void {
    const d = this.deps.rateLimiter?.take(cls, `w:${conn.auth.sub.toLowerCase()}`);
    if (d && !d.ok) {
      this.deps.metrics.rateLimited.labels(cls).inc();
      throw new ApiError('RATE_LIMITED', `Rate limit of ${d.limit} ${cls} messages per minute exceeded`, { class: cls, limit: d.limit, retry_after: d.retryAfter, reset: d.reset });
    }
  }

  /** One audit row per WS message (a chat turn, a subscribe...), route `/ws:<type>`. */
  private auditMessage(conn: Conn, type: string | undefined, nft: string | undefined, status: number, started: number, refused: boolean): void {
    const audit = this.deps.audit;
    if (!audit) return;
    const entry: AuditEntry = {
      ts: Date.now(), requestId: randomUUID(), wallet: conn.auth.sub, nft: nft ?? conn.auth.nft, method: 'WS',
      // Only known types become routes: an invented type must not make up audit routes.
      route: type && Object.hasOwn(this.deps.handlers, type) ? `/ws:${type}` : '/ws:invalid',
      status, ip: conn.ip, durationMs: performance.now() - started,
    };
    if (refused && audit.refused) audit.refused(entry);
    else audit.record(entry);
  }

  /** Every SWEEP_MS: closes the sockets whose token expired and the slow readers. */
  private sweepConns(): void {
    const limit = this.deps.config.wsMaxBufferedBytes;
    const now = Date.now();
    for (const conn of this.conns) {
      if (conn.closed) continue;
      if (now >= conn.expiresAt) {
        this.end(conn, new ApiError('TOKEN_EXPIRED', 'The access token has expired; reconnect with a new one'), WS_CLOSE_TOKEN_EXPIRED);
        continue;
      }
      if (conn.ws.getBufferedAmount() >= limit / 2) {
        this.deps.metrics.wsSlowConsumers.labels('closed').inc();
        this.deps.log.warn({ conn: conn.id, wallet: conn.auth.sub }, 'closing slow WebSocket reader');
        conn.close(WS_CLOSE_SLOW_CONSUMER, 'slow consumer');
      }
    }
  }

  private auditWs(ip: string, auth: AuthClaims | undefined, status: number, started: number, refused = false): void {
    const audit = this.deps.audit;
    if (!audit) return;
    const entry: AuditEntry = {
      ts: Date.now(), requestId: randomUUID(), wallet: auth?.sub, nft: auth?.nft, method: 'WS', route: '/ws',
      status, ip, durationMs: performance.now() - started,
    };
    if (refused && audit.refused) audit.refused(entry);
    else audit.record(entry);
  }

  /** Open sockets of a wallet (for tests and the note's measurements). */
  socketsOf(wallet: string): number {
    return this.perWallet.get(wallet.toLowerCase()) ?? 0;
  }

  publish(topic: string, frame: string): void {
    this.app?.publish(topic, frame, false, false);
  }

  subscribers(topic: string): number {
    return this.app ? this.app.numSubscribers(topic) : 0;
  }

  private subscribeCount = 0;
  get subscriptions(): number {
    return this.subscribeCount;
  }

  private readonly countSubscription = (): void => {
    this.subscribeCount++;
  };

  /**
   * Unsubscribes every socket on `topic` whose claims `keep` refuses (e.g. after an NFT changed
   * hands), telling each with `frame`. Returns how many were dropped.
   */
  dropSubscribers(topic: string, keep: (auth: AuthClaims) => boolean, frame: object): number {
    let dropped = 0;
    for (const conn of this.conns) {
      if (conn.closed || keep(conn.auth) || !conn.isSubscribed(topic)) continue;
      conn.unsubscribe(topic);
      conn.send(frame);
      dropped++;
    }
    return dropped;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  private accepting = true;

  /** Shutdown: refuse new upgrades (503) from connections still open to the HTTP side. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Ends every socket with a close frame (1001 going away), after what is already queued on it. */
  closeAll(): void {
    if (this.sweep) clearInterval(this.sweep);
    for (const conn of this.conns) conn.close(1001, 'server shutting down');
  }
}
