import { randomUUID } from 'node:crypto';
import * as v from 'valibot';
import type { TemplatedApp, WebSocket } from './uws.js';
import { ApiError, toApiError } from '../errors.js';
import type { Config, RateClass } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { RateLimiter } from '../guards/rate-limiter.js';
import type { AuthClaims } from './route.js';
import { validate } from './validation.js';
import type { AuditSink } from './http-server.js';
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
  subscribe(topic: string): void;
  unsubscribe(topic: string): boolean;
  isSubscribed(topic: string): boolean;
  /** Runs once when the socket closes (for any reason). */
  onClose(cb: () => void): void;
  readonly closed: boolean;
}

export interface WsMessageHandler<T = any> {
  schema: v.GenericSchema<unknown, T>;
  rateClass: RateClass;
  handle(conn: WsConn, msg: T): void | Promise<void>;
}

/** The one seam for fan-out (uWS topics today; NATS or Redis pub/sub when past one machine). */
export interface Publisher {
  publish(topic: string, frame: string): void;
  subscribers(topic: string): number;
  /** Unsubscribes the sockets on `topic` whose claims `keep` refuses, telling each with `frame`. */
  dropSubscribers?(topic: string, keep: (auth: AuthClaims) => boolean, frame: object): number;
}

interface UserData {
  conn?: Conn;
  auth: AuthClaims;
  /** kept to re-check the session on every message through the same guard as HTTP */
  token: string;
  ip: string;
}

class Conn implements WsConn {
  readonly id = randomUUID();
  closed = false;
  expiryTimer: NodeJS.Timeout | undefined;
  unregister: (() => void) | undefined;
  private closeCbs: (() => void)[] | undefined;

  constructor(readonly ws: WebSocket<UserData>, readonly auth: AuthClaims, private readonly onDrop: () => void) {}

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

  subscribe(topic: string): void {
    if (!this.closed) this.ws.subscribe(topic);
  }

  unsubscribe(topic: string): boolean {
    return this.closed ? false : this.ws.unsubscribe(topic);
  }

  isSubscribed(topic: string): boolean {
    return this.closed ? false : this.ws.isSubscribed(topic);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.ws.end(code, reason);
  }

  onClose(cb: () => void): void {
    if (this.closed) cb();
    else (this.closeCbs ??= []).push(cb);
  }

  /** Called by the server's close handler. */
  markClosed(): void {
    this.closed = true;
    const cbs = this.closeCbs;
    this.closeCbs = undefined;
    if (cbs) for (const cb of cbs) cb();
  }
}

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
  private readonly conns = new Set<Conn>();
  private sweep: NodeJS.Timeout | undefined;

  constructor(private readonly deps: WsServerDeps) {}

  attach(app: TemplatedApp): void {
    this.app = app;
    const { config, metrics, log } = this.deps;
    app.ws<UserData>('/ws', {
      maxPayloadLength: 64 * 1024,
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
        const headers: Record<string, string> = { 'x-forwarded-for': req.getHeader('x-forwarded-for') };
        const ip = this.deps.clientIp(Buffer.from(res.getRemoteAddressAsText()).toString(), headers);
        const started = performance.now();
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        const refuse = (e: ApiError, extra?: Record<string, string>) => {
          if (aborted) return;
          res.cork(() => {
            res.writeStatus(STATUS_LINES[e.status]!).writeHeader('Content-Type', 'application/json');
            if (extra) for (const k in extra) res.writeHeader(k, extra[k]!);
            res.end(JSON.stringify(e.toBody()));
          });
          this.auditWs(ip, undefined, e.status, started);
        };
        if (!token) return refuse(new ApiError('UNAUTHORIZED', 'Missing token query parameter'));
        this.deps.authenticate(token).then(
          (auth) => {
            if (aborted) return;
            const d = this.deps.rateLimiter?.take('other', `w:${auth.sub.toLowerCase()}`);
            if (d && !d.ok) {
              this.deps.metrics.rateLimited.labels('other').inc();
              return refuse(new ApiError('RATE_LIMITED', 'Too many connection attempts', { class: 'other', limit: d.limit, retry_after: d.retryAfter, reset: d.reset }), {
                'Retry-After': String(d.retryAfter), 'X-RateLimit-Limit': String(d.limit), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(d.reset),
              });
            }
            res.cork(() => res.upgrade<UserData>({ auth, token, ip }, key, protocol, extensions, context));
            this.auditWs(ip, auth, 101, started);
          },
          (e) => refuse(toApiError(e)),
        );
      },
      open: (ws) => {
        const data = ws.getUserData();
        const conn = new Conn(ws, data.auth, () => metrics.wsSlowConsumers.labels('dropped').inc());
        data.conn = conn;
        this.conns.add(conn);
        conn.unregister = this.deps.live?.add(data.auth.sid, {
          kind: 'ws',
          end: (error, code) => this.end(conn, error, code),
        });
        metrics.wsConnections.inc();
        const msLeft = data.auth.exp * 1000 - Date.now();
        conn.expiryTimer = setTimeout(() => {
          this.end(conn, new ApiError('TOKEN_EXPIRED', 'The access token has expired; reconnect with a new one'), WS_CLOSE_TOKEN_EXPIRED);
        }, Math.max(0, Math.min(msLeft, 2 ** 31 - 1)));
        conn.expiryTimer.unref();
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
        const conn = ws.getUserData().conn;
        if (!conn) return;
        clearTimeout(conn.expiryTimer);
        conn.unregister?.();
        conn.markClosed();
        this.conns.delete(conn);
        metrics.wsConnections.dec();
      },
    });
    this.sweep = setInterval(() => this.closeSlowReaders(), 500);
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
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      conn.send(errorFrame(new ApiError('INVALID_REQUEST', 'Messages must be JSON objects')));
      return;
    }
    let type: string | undefined;
    try {
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new ApiError('INVALID_REQUEST', 'Messages must be JSON objects');
      }
      type = validate(envelope, parsed, 'message').type;
      if (type === 'ping') {
        conn.send('{"type":"pong"}');
        return;
      }
      // Own keys only: "constructor" or "toString" must not reach Object.prototype.
      const handler = Object.hasOwn(this.deps.handlers, type) ? this.deps.handlers[type] : undefined;
      if (!handler) {
        throw new ApiError('INVALID_FIELD', `Unknown message type "${type}"`, { field: 'type', allowed: ['ping', ...Object.keys(this.deps.handlers)] });
      }
      const limiter = this.deps.rateLimiter;
      if (limiter) {
        const d = limiter.take(handler.rateClass, `w:${conn.auth.sub.toLowerCase()}`);
        if (!d.ok) {
          this.deps.metrics.rateLimited.labels(handler.rateClass).inc();
          throw new ApiError('RATE_LIMITED', `Rate limit of ${d.limit} ${handler.rateClass} messages per minute exceeded`, { class: handler.rateClass, limit: d.limit, retry_after: d.retryAfter, reset: d.reset });
        }
      }
      const msg = validate(handler.schema, parsed, 'message');
      await handler.handle(conn, msg);
    } catch (e) {
      const err = toApiError(e);
      if (err.code === 'INTERNAL_ERROR' && !(e instanceof ApiError)) this.deps.log.error({ err: e, type }, 'ws message failed');
      conn.send(errorFrame(err, type));
    }
  }

  private closeSlowReaders(): void {
    const limit = this.deps.config.wsMaxBufferedBytes;
    for (const conn of this.conns) {
      if (!conn.closed && conn.ws.getBufferedAmount() >= limit / 2) {
        this.deps.metrics.wsSlowConsumers.labels('closed').inc();
        this.deps.log.warn({ conn: conn.id, wallet: conn.auth.sub }, 'closing slow WebSocket reader');
        conn.close(WS_CLOSE_SLOW_CONSUMER, 'slow consumer');
      }
    }
  }

  private auditWs(ip: string, auth: AuthClaims | undefined, status: number, started: number): void {
    this.deps.audit?.record({
      ts: Date.now(), requestId: randomUUID(), wallet: auth?.sub, nft: auth?.nft, method: 'WS', route: '/ws',
      status, ip, durationMs: performance.now() - started,
    });
  }

  publish(topic: string, frame: string): void {
    this.app?.publish(topic, frame, false, false);
  }

  subscribers(topic: string): number {
    return this.app ? this.app.numSubscribers(topic) : 0;
  }

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

  closeAll(): void {
    if (this.sweep) clearInterval(this.sweep);
    for (const conn of this.conns) conn.close(1001, 'server shutting down');
  }
}
