import { randomUUID } from 'node:crypto';
import { arrivedOverHttps } from './https-rule.js';
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from './uws.js';
import { ApiError, toApiError } from '../errors.js';
import type { Config, RateClass } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Router } from './router.js';
import type { LiveConnections } from './live-connections.js';
import type { AuthClaims, Reply, Request, RouteDef, SseSink } from './route.js';
import { validate } from './validation.js';
import type { RateLimiter } from '../guards/rate-limiter.js';
import type { Cors } from '../guards/cors.js';
import type { OverloadMonitor } from '../guards/overload.js';
import { STATUS_LINES } from './status-lines.js';
import type { StaticFiles } from './static-files.js';
import { KNOWN_METHODS } from '../metrics.js';
import { isLoopbackIp } from './public-url.js';
import { DONE, isOpenAiPath, openaiError } from '../agents/openai-wire.js';

/** Appends one row per API call (batched by the implementation). */
export interface AuditSink {
  record(entry: AuditEntry): void;
  /**
   * A request refused before it did anything (rate limited, shed, plain HTTP in production) or a
   * CORS preflight: counted into one row per client IP, method, route and status per minute,
   * so a flood of them costs a counter, not a hash-chained row each.
   */
  refused?(entry: AuditEntry): void;
}

export interface AuditEntry {
  ts: number;
  requestId: string;
  wallet: string | undefined;
  nft: string | undefined;
  method: string;
  route: string;
  status: number;
  ip: string;
  durationMs: number;
  /** The caller's own X-Request-Id, kept beside ours (never as ours). */
  clientRequestId?: string;
}

/** Checks X-Signature / X-Timestamp on routes marked `signed`. Throws ApiError INVALID_SIGNATURE. */
export interface RequestVerifier {
  verify(req: { method: string; fullPath: string; body: Buffer; header(name: string): string | undefined; auth: AuthClaims }): void | Promise<void>;
}

export interface HttpServerDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  /** The orchestrator API (or, for a standalone agent, the agent's API at the root). */
  api: Router;
  /** The Agent API of embedded agents, reached by Host name or /v1/agents/{nft}/. */
  agents?: Router;
  /** Standalone agent: every request addresses this NFT's agent. */
  fixedAgentNft?: string;
  /** `agentNft`: the request addresses that NFT's agent, whose scoped tokens are then accepted too. */
  authenticate(token: string, agentNft?: string): Promise<AuthClaims>;
  rateLimiter?: RateLimiter;
  cors: Cors;
  overload?: OverloadMonitor;
  audit?: AuditSink;
  requestVerifier?: RequestVerifier;
  /** the index a session revocation uses to end this server's SSE streams of that session */
  live?: LiveConnections;
  /** Lets the WebSocket layer attach itself to the same app. */
  attachWs?(app: TemplatedApp): void;
  /** The web console's built files, answered at `/` and `/assets/*` of the orchestrator. */
  staticFiles?: StaticFiles;
}

/**
 * The headers a request is read for, decided once from the configuration: uWS request objects
 * are valid only synchronously, and each getHeader crosses into C++ and allocates a string.
 */
function headersToRead(deps: HttpServerDeps): string[] {
  const c = deps.config;
  const h = ['authorization', 'x-request-id', 'idempotency-key'];
  if (deps.agents) h.push('host');
  // An agent's OpenAI-compatible endpoint names the conversation in a header.
  if (deps.agents || deps.fixedAgentNft !== undefined) h.push('x-conversation-id');
  if (c.corsOrigins.length) h.push('origin', 'access-control-request-headers');
  if (c.trustedProxies.length || c.ingress !== 'none') h.push('x-forwarded-for', 'x-forwarded-proto');
  if (c.requireSignedRequests) h.push('x-signature', 'x-timestamp');
  return h;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const JSON_TYPE = 'application/json; charset=utf-8';
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const AGENT_PREFIX = '/v1/agents/';
/**
 * Lingering close of a refused upload: at most this long, and this many more bytes read (nginx:
 * lingering_time 30 s). Long enough for an ordinary upload to finish under load, so a strict
 * client (undici) reads a whole answer; short enough that nobody can keep us reading.
 */
const LINGER_MS = 10_000;
const LINGER_MAX_BYTES = 64 * 1024 * 1024;
/** How long a stream past its deadline has to write its own final frame before the server ends it. */
const STREAM_END_GRACE_MS = 2_000;

/** One in-flight HTTP exchange. Holds the uWS response until it is answered or aborted. */
class Exchange implements Request {
  readonly id: string;
  readonly start = performance.now();
  aborted = false;
  done = false;
  streaming = false;
  route = '';
  params: Record<string, string> = {};
  query: unknown = undefined;
  body: unknown = undefined;
  auth: AuthClaims | undefined = undefined;
  agentNft: string | undefined = undefined;
  /** a route a remote agent calls with its deployment credential */
  credentialRoute = false;
  nft: string | undefined = undefined;
  path = '';
  status = 0;
  /** Refused before doing anything (rate limited, shed, plain HTTP in production) or a preflight: audited in aggregate. */
  refused = false;
  /** The caller's X-Request-Id when well-formed: logged and audited beside ours, never as ours. */
  readonly clientRequestId: string | undefined;
  readonly extraHeaders: Record<string, string> = {};
  /** The whole request body has arrived (or there is none): closing now cannot cut the client's upload. */
  bodyComplete = false;
  /** Set while a refused body is being read and discarded (lingering close): the body ended or its bound was hit. */
  lingerDone: (() => void) | undefined = undefined;
  /** When a stream passed its deadline (performance.now()), 0 before. */
  deadlineAt = 0;
  /** A stream's last resort: writes a final error event and ends it (set by startSse). */
  endStream: ((err: ApiError) => void) | undefined = undefined;
  private controller: AbortController | undefined;
  private abortReason: ApiError | undefined;
  private abortCbs: (() => void)[] | undefined;
  private deadlineCbs: (() => void)[] | undefined;
  private _log: Logger | undefined;

  constructor(
    readonly res: HttpResponse,
    readonly method: string,
    readonly fullPath: string,
    readonly rawQuery: string,
    readonly headers: Record<string, string>,
    readonly ip: string,
    private readonly baseLog: Logger,
  ) {
    const given = headers['x-request-id'];
    this.clientRequestId = given && REQUEST_ID_RE.test(given) ? given : undefined;
    // Always ours: a client-chosen id could collide with or impersonate another request's.
    this.id = randomUUID();
  }

  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()] || undefined;
  }

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.aborted) this.controller.abort(this.abortReason);
    return this.controller.signal;
  }

  get log(): Logger {
    return (this._log ??= this.baseLog.child(this.clientRequestId ? { req_id: this.id, client_req_id: this.clientRequestId } : { req_id: this.id }));
  }

  onAbort(cb: () => void): void {
    (this.abortCbs ??= []).push(cb);
  }

  onDeadline(cb: () => void): void {
    (this.deadlineCbs ??= []).push(cb);
  }

  /** The stream ran past its deadline: its producer is told to stop (and then ends it). */
  deadline(now: number): void {
    if (this.deadlineAt) return;
    this.deadlineAt = now;
    if (this.deadlineCbs) for (const cb of this.deadlineCbs) cb();
  }

  /** The client went away (no reason), or the server cut the exchange short (an ApiError says why). */
  abort(reason?: ApiError): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    if (this.abortCbs) for (const cb of this.abortCbs) cb();
  }
}

/**
 * The HTTP side of the one uWS app: routing (with /v1 and unprefixed aliases, Host-name and
 * path addressing of embedded agents), body limits, validation, auth, guards, replies, logs,
 * metrics and audit. Every async reply is corked; an aborted client is never written to.
 */
export class HttpServer {
  readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | undefined;
  private readonly inflight = new Set<Exchange>();
  private readonly deadlineTimer: NodeJS.Timeout;
  private readonly agentHostRe: RegExp | undefined;
  private draining = false;
  private readonly readHeaders: string[];
  port = 0;

  constructor(private readonly deps: HttpServerDeps) {
    this.app = uWS.App();
    this.readHeaders = headersToRead(deps);
    const publicHost = new URL(deps.config.publicUrl).hostname;
    // A loopback public host (the default when bound to 127.0.0.1) has its agents at agent-N.localhost.
    const hostRe = isLoopbackIp(publicHost) ? `(?:${escapeRe(publicHost)}|localhost)` : escapeRe(publicHost);
    this.agentHostRe = deps.agents ? new RegExp(`^agent-([A-Za-z0-9_-]{1,78})\\.${hostRe}(?::\\d+)?$`, 'i') : undefined;
    deps.attachWs?.(this.app);
    this.app.any('/*', (res, req) => this.onRequest(res, req));
    // Deadlines are checked by one coarse timer over the in-flight set, not a timer per request.
    this.deadlineTimer = setInterval(() => this.checkDeadlines(), Math.min(250, deps.config.requestTimeoutMs));
    this.deadlineTimer.unref();
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen on ${host}:${port} (in use or not permitted)`));
        this.listenSocket = socket;
        this.port = uWS.us_socket_local_port(socket as never);
        resolve(this.port);
      });
    });
  }

  /** Stops accepting: the listen socket closes, and requests on open connections get 503. */
  stopAccepting(): void {
    this.draining = true;
    if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
  }

  /**
   * Stops accepting, then waits (bounded) for in-flight requests and streams to finish. What is
   * left then is answered, never dropped: a stream gets a final error event, a request a 503.
   */
  async drain(graceMs: number): Promise<void> {
    this.stopAccepting();
    const until = Date.now() + graceMs;
    while (this.inflight.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const err = new ApiError('SERVICE_UNAVAILABLE', 'The server is shutting down', { reason: 'shutdown' });
    for (const ex of [...this.inflight]) {
      if (ex.aborted) continue;
      if (ex.streaming) ex.endStream?.(err);
      else if (!ex.done) this.fail(ex, err);
      ex.abort(err);
    }
    clearInterval(this.deadlineTimer);
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  private onRequest(res: HttpResponse, req: HttpRequest): void {
    const method = req.getMethod().toUpperCase();
    const sf = this.deps.staticFiles;
    if (sf && sf.handles(method, req.getUrl()) && this.serveStatic(sf, res, req, method)) return;
    const headers: Record<string, string> = {};
    for (const h of this.readHeaders) {
      const v = req.getHeader(h);
      if (v) headers[h] = v;
    }
    if (BODY_METHODS.has(method)) {
      const len = req.getHeader('content-length');
      if (len) headers['content-length'] = len;
      const te = req.getHeader('transfer-encoding');
      if (te) headers['transfer-encoding'] = te;
    }
    const ex = new Exchange(
      res, method, req.getUrl(), req.getQuery() ?? '', headers,
      Buffer.from(res.getRemoteAddressAsText()).toString(), this.deps.log,
    );
    res.onAborted(() => {
      ex.abort();
      this.finish(ex);
    });
    this.inflight.add(ex);
    // The body must be consumed from this synchronous call on; start reading now.
    const body = BODY_METHODS.has(method) ? this.readBody(ex) : undefined;
    if (!body) ex.bodyComplete = true;
    // Handled where it is awaited; a request refused before that (404, 401) must not leave an
    // unhandled rejection behind (413 of a body nobody reads), which would end the process.
    body?.catch(() => undefined);
    this.handle(ex, body).catch((e) => this.fail(ex, e));
  }

  /**
   * The console's files, answered synchronously from memory before any API machinery: no
   * auth, no body, no rate-limit bucket (a page load must not eat the API budget of its own
   * calls). Not on an embedded agent's host name, and in production only over HTTPS (else the
   * API path answers its usual FORBIDDEN).
   */
  private serveStatic(sf: StaticFiles, res: HttpResponse, req: HttpRequest, method: string): boolean {
    if (this.agentHostRe && this.agentHostRe.test(req.getHeader('host'))) return false;
    const prod = this.deps.config.env === 'production';
    const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
    if (prod && !(req.getHeader('x-forwarded-proto') === 'https' && this.deps.config.trustedProxies.includes(ip))) return false;
    if (this.draining) return false;
    // uWS counts a response finished by endWithoutBody (HEAD, 304) as unanswered unless an
    // abort handler is attached: it would abort the process.
    res.onAborted(() => {});
    const start = performance.now();
    const url = req.getUrl();
    const given = req.getHeader('x-request-id');
    const id = given && REQUEST_ID_RE.test(given) ? given : randomUUID();
    const status = sf.serve(res, method, url, req.getHeader('accept-encoding'), req.getHeader('if-none-match'), id, prod);
    this.deps.metrics.observeRequest('/console', method, status, (performance.now() - start) / 1000);
    return true;
  }

  private async handle(ex: Exchange, bodyPromise: Promise<Buffer> | undefined): Promise<void> {
    const { config, cors } = this.deps;
    const origin = ex.headers.origin;
    if (cors.enabled && origin) {
      const h = cors.headersFor(origin);
      if (h) Object.assign(ex.extraHeaders, h);
    }
    if (ex.method === 'OPTIONS') {
      ex.refused = true;
      const h = cors.preflight(origin, ex.headers['access-control-request-headers']);
      if (h) Object.assign(ex.extraHeaders, h);
      return this.send(ex, 204, '', undefined);
    }
    if (this.draining) {
      ex.refused = true;
      throw new ApiError('SERVICE_UNAVAILABLE', 'The server is shutting down');
    }
    if (config.env === 'production' && !this.isHttps(ex)) {
      ex.refused = true;
      throw new ApiError('FORBIDDEN', 'HTTPS is required: plain-HTTP requests are refused in production', { https_required: true });
    }

    const { router, path } = this.resolve(ex);
    ex.path = path;
    const m = router.match(ex.method, path);
    if ('notFound' in m) {
      this.rateLimit(ex, 'other');
      throw new ApiError('NOT_FOUND', `No route for ${ex.method} ${ex.fullPath}`);
    }
    if ('methodNotAllowed' in m) {
      this.rateLimit(ex, 'other');
      ex.extraHeaders.Allow = m.methodNotAllowed.join(', ');
      throw new ApiError('METHOD_NOT_ALLOWED', `${ex.method} is not allowed on ${ex.fullPath}`, { allowed: m.methodNotAllowed });
    }
    const route = m.route;
    ex.route = route.path;
    ex.credentialRoute = route.credential === 'agent';
    ex.params = m.params;
    if (ex.agentNft === undefined && m.params.nft_token_id !== undefined) ex.nft = m.params.nft_token_id;

    if (this.deps.overload?.overloaded && route.path !== '/health') {
      ex.refused = true;
      this.deps.metrics.shed.inc();
      ex.extraHeaders['Retry-After'] = String(this.deps.overload.retryAfter);
      throw new ApiError('SERVICE_UNAVAILABLE', 'The server is overloaded; retry shortly', { reason: 'overloaded' });
    }

    try {
      await this.authenticate(ex, route);
    } finally {
      // Counted even when auth fails (then by IP): a flood of bad tokens is limited too.
      this.rateLimit(ex, route.rateClass);
    }

    let raw: Buffer | undefined;
    if (bodyPromise) raw = await bodyPromise;
    if (route.body) {
      ex.body = validate(route.body, parseJson(raw), 'body');
    }
    if (route.query) ex.query = validate(route.query, parseQuery(ex.rawQuery), 'query');
    else ex.query = {};
    if (route.signed && this.deps.requestVerifier && ex.auth) {
      // The signed path is the request target as sent: path plus ?query when there is one.
      const signedPath = ex.rawQuery ? `${ex.fullPath}?${ex.rawQuery}` : ex.fullPath;
      await this.deps.requestVerifier.verify({ method: ex.method, fullPath: signedPath, body: raw ?? Buffer.alloc(0), header: (n) => ex.header(n), auth: ex.auth });
    }

    const out = await route.handler(ex as Request<any, any>);
    if (ex.aborted || ex.done) return;
    this.reply(ex, out, route);
  }

  /** Picks the router and the routed path: /v1 prefix, unprefixed alias, or an embedded agent. */
  private resolve(ex: Exchange): { router: Router; path: string } {
    const p = ex.fullPath;
    const { agents, api, fixedAgentNft } = this.deps;
    if (fixedAgentNft !== undefined) {
      ex.agentNft = fixedAgentNft;
      return { router: api, path: this.stripVersion(ex, p) };
    }
    if (agents) {
      const host = ex.headers.host;
      const hm = host ? this.agentHostRe!.exec(host) : null;
      if (hm) {
        ex.agentNft = hm[1];
        return { router: agents, path: this.stripVersion(ex, p) };
      }
      if (p.startsWith(AGENT_PREFIX)) {
        const rest = p.slice(AGENT_PREFIX.length);
        const slash = rest.indexOf('/');
        const nft = slash < 0 ? rest : rest.slice(0, slash);
        if (/^[A-Za-z0-9_-]{1,78}$/.test(nft)) {
          ex.agentNft = nft;
          return { router: agents, path: slash < 0 ? '/' : rest.slice(slash) };
        }
      }
    }
    return { router: api, path: this.stripVersion(ex, p) };
  }

  /** /v1/x -> /x; an unprefixed /x is the deprecated alias and says where its successor is. */
  private stripVersion(ex: Exchange, p: string): string {
    if (p === '/v1') return '/v1';
    if (p.startsWith('/v1/')) return p.slice(3);
    // /openai/v1/... is versioned by OpenAI's scheme, not an alias.
    if (p !== '/' && !p.startsWith('/.well-known/') && !(ex.agentNft !== undefined && isOpenAiPath(p))) {
      ex.extraHeaders.Deprecation = 'true';
      ex.extraHeaders.Link = `</v1${p}>; rel="successor-version"`;
    }
    return p;
  }

  private async authenticate(ex: Exchange, route: RouteDef): Promise<void> {
    const h = ex.headers.authorization;
    // A deployment credential is not a JWT: its route's handler checks it.
    if (route.auth === 'none' && (!h || route.credential)) return;
    const token = h && h.length > 7 && h.slice(0, 7).toLowerCase() === 'bearer ' ? h.slice(7).trim() : undefined;
    if (!token) {
      if (route.auth === 'required') {
        throw new ApiError('UNAUTHORIZED', h ? 'Authorization header must be "Bearer <token>"' : 'Missing Authorization header');
      }
      return;
    }
    try {
      ex.auth = await this.deps.authenticate(token, ex.agentNft);
    } catch (e) {
      if (route.auth === 'required') throw e;
    }
  }

  private rateLimit(ex: Exchange, cls: RateClass, count = true): void {
    const limiter = this.deps.rateLimiter;
    if (!limiter) return;
    // Agents of one provider share its egress address: their polls are counted per agent there.
    const key = ex.auth ? `w:${ex.auth.sub.toLowerCase()}` : ex.credentialRoute ? `a:${ex.agentNft}:${this.clientIp(ex)}` : `ip:${this.clientIp(ex)}`;
    const d = count ? limiter.take(cls, key) : limiter.peek(cls, key);
    ex.extraHeaders['X-RateLimit-Limit'] = String(d.limit);
    ex.extraHeaders['X-RateLimit-Remaining'] = String(d.remaining);
    ex.extraHeaders['X-RateLimit-Reset'] = String(d.reset);
    if (!d.ok && count) {
      ex.refused = true;
      ex.extraHeaders['Retry-After'] = String(d.retryAfter);
      this.deps.metrics.rateLimited.labels(cls).inc();
      throw new ApiError('RATE_LIMITED', `Rate limit of ${d.limit} ${cls} requests per minute exceeded`, {
        class: cls, limit: d.limit, retry_after: d.retryAfter, reset: d.reset,
      });
    }
  }

  /** The client address: X-Forwarded-For is believed only from a configured trusted proxy. */
  clientIp(ex: { ip: string; headers: Record<string, string> }): string {
    const xff = ex.headers['x-forwarded-for'];
    const trusted = this.deps.config.trustedProxies;
    if (!xff) return ex.ip;
    if (this.deps.config.ingress !== 'none') {
      // Behind the provider's ingress the peer is always that proxy, and it sets (nginx-ingress:
      // X-Forwarded-For $remote_addr) or appends (Traefik) the client's address last.
      const last = xff.slice(xff.lastIndexOf(',') + 1).trim();
      return last || ex.ip;
    }
    if (!trusted.includes(ex.ip)) return ex.ip;
    // The rightmost address that is not one of our proxies: entries left of it were written
    // by the client itself (a proxy that appends, e.g. nginx $proxy_add_x_forwarded_for).
    const parts = xff.split(',');
    for (let i = parts.length - 1; i >= 0; i--) {
      const a = parts[i]!.trim();
      if (a && !trusted.includes(a)) return a;
    }
    return ex.ip;
  }

  private isHttps(ex: Exchange): boolean {
    return arrivedOverHttps(this.deps.config, ex.ip, ex.headers['x-forwarded-proto']);
  }

  private readBody(ex: Exchange): Promise<Buffer> {
    const limit = this.deps.config.bodyLimit;
    const declared = Number(ex.headers['content-length'] ?? 0);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = declared > limit;
      let discarded = 0;
      if (failed) reject(new ApiError('PAYLOAD_TOO_LARGE', `Request body over the ${limit}-byte limit`, { limit }));
      else if (declared === 0 && !ex.headers['transfer-encoding']) {
        // No body by HTTP's framing rules: do not wait for uWS to say so. It does not when the
        // header section came in more than one packet (a DELETE with Content-Length: 0 then hung).
        ex.bodyComplete = true;
        resolve(Buffer.alloc(0));
      }
      ex.res.onData((ab, isLast) => {
        if (isLast) ex.bodyComplete = true;
        if (failed) {
          // Refused: read and discard what the client is still sending (bounded), see linger().
          discarded += ab.byteLength;
          if (isLast || discarded > LINGER_MAX_BYTES) ex.lingerDone?.();
          return;
        }
        size += ab.byteLength;
        if (size > limit) {
          failed = true;
          reject(new ApiError('PAYLOAD_TOO_LARGE', `Request body over the ${limit}-byte limit`, { limit }));
          return;
        }
        // The ArrayBuffer is only valid during this callback: copy it.
        chunks.push(Buffer.from(Buffer.from(ab)));
        if (isLast) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      });
    });
  }

  private reply(ex: Exchange, out: unknown, route: RouteDef): void {
    if (out && typeof out === 'object' && 'kind' in out) {
      const r = out as Reply;
      if (r.kind === 'json') {
        if (r.headers) Object.assign(ex.extraHeaders, r.headers);
        return this.sendJson(ex, r.status, r.body);
      }
      if (r.kind === 'sse') {
        if (r.headers) Object.assign(ex.extraHeaders, r.headers);
        return this.startSse(ex, r.start);
      }
      if (r.kind === 'text') return this.send(ex, r.status, r.body, r.contentType);
      if (r.kind === 'json-text') return this.send(ex, r.status, r.body, JSON_TYPE);
    }
    this.sendJson(ex, route.successStatus ?? 200, out);
  }

  private sendJson(ex: Exchange, status: number, body: unknown): void {
    this.send(ex, status, JSON.stringify(body), JSON_TYPE);
  }

  private fail(ex: Exchange, e: unknown): void {
    if (ex.aborted || ex.done) return;
    const err = toApiError(e);
    if (err.code === 'INTERNAL_ERROR' && !(e instanceof ApiError)) {
      ex.log.error({ err: e, route: ex.route || ex.fullPath }, 'unhandled error');
    }
    if (err.code === 'TIMEOUT') this.deps.metrics.timeouts.inc();
    // A quota refusal says when to come back in a header too, as a rate limit does.
    if (err.code === 'QUOTA_EXCEEDED' && typeof err.details.retry_after === 'number') ex.extraHeaders['Retry-After'] = String(err.details.retry_after);
    // An agent's OpenAI-compatible paths answer in OpenAI's error shape, every other path in the spec's.
    const body = ex.agentNft !== undefined && isOpenAiPath(ex.path) ? openaiError(err) : err.toBody();
    // A body we refused to read: answer and close the connection rather than drain it.
    this.send(ex, err.status, JSON.stringify(body), 'application/json; charset=utf-8', err.code === 'PAYLOAD_TOO_LARGE');
  }

  private send(ex: Exchange, status: number, body: string, contentType: string | undefined, close = false): void {
    if (ex.aborted || ex.done) return;
    ex.done = true;
    ex.status = status;
    if (this.deps.rateLimiter && ex.extraHeaders['X-RateLimit-Limit'] === undefined) this.rateLimit(ex, 'other', false);
    const res = ex.res;
    const prod = this.deps.config.env === 'production';
    res.cork(() => {
      res.writeStatus(STATUS_LINES[status] ?? String(status));
      res.writeHeader('X-Request-Id', ex.id);
      if (contentType) res.writeHeader('Content-Type', contentType);
      writeSecurityHeaders(res, prod);
      for (const k in ex.extraHeaders) res.writeHeader(k, ex.extraHeaders[k]!);
      // While draining, close keep-alive connections after their answer so the process can exit.
      const closeAfter = close || this.draining;
      if (close && !ex.bodyComplete && ex.method !== 'HEAD') return this.linger(ex, body);
      if (ex.method === 'HEAD') res.endWithoutBody(Buffer.byteLength(body), closeAfter);
      else res.end(body, closeAfter);
    });
    this.finish(ex);
  }

  /**
   * Lingering close (as nginx does): the answer to a refused upload (413) is written while the
   * client is still sending; closing the socket then would reset it, and a reset discards the
   * answer unread in the client's buffers (1 run in 4 under load). So the answer goes out now
   * (chunked: uWS cannot end a response while the request body is still arriving), the rest of
   * the body is read and discarded, and when it has all arrived the answer is terminated (the
   * client closes, as `Connection: close` tells it). A client still sending after
   * LINGER_MAX_BYTES more or LINGER_MS is cut off: it had that long to read its answer.
   * (uWS's end(..., closeConnection) after write() emits a stray header line: not used here.)
   */
  private linger(ex: Exchange, body: string): void {
    const res = ex.res;
    res.writeHeader('Connection', 'close');
    res.write(body);
    let closed = false;
    const close = (complete: boolean) => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      ex.lingerDone = undefined;
      if (ex.aborted) return;
      if (complete) res.cork(() => res.end('', false));
      else res.close();
    };
    const timer = setTimeout(() => close(false), LINGER_MS);
    timer.unref();
    ex.lingerDone = () => setImmediate(() => close(ex.bodyComplete));
    ex.onAbort(() => {
      closed = true;
      clearTimeout(timer);
    });
  }

  private startSse(ex: Exchange, start: (sink: SseSink) => void): void {
    ex.done = true;
    ex.streaming = true;
    ex.status = 200;
    const res = ex.res;
    res.cork(() => {
      res.writeStatus('200 OK');
      res.writeHeader('X-Request-Id', ex.id);
      res.writeHeader('Content-Type', 'text/event-stream; charset=utf-8');
      res.writeHeader('Cache-Control', 'no-cache, no-store');
      res.writeHeader('X-Accel-Buffering', 'no');
      writeSecurityHeaders(res, this.deps.config.env === 'production');
      for (const k in ex.extraHeaders) res.writeHeader(k, ex.extraHeaders[k]!);
      // An empty comment flushes the headers so the client sees the stream open now.
      res.write(':\n\n');
    });
    let drainCb: (() => void) | undefined;
    let ended = false;
    res.onWritable(() => {
      const cb = drainCb;
      drainCb = undefined;
      cb?.();
      return true;
    });
    // A stream opened with a session's token ends when the session is revoked or its token
    // expires: one last event carries the error, then the stream ends and the turn is aborted.
    let unregister: (() => void) | undefined;
    let expiry: NodeJS.Timeout | undefined;
    const cleanup = () => {
      unregister?.();
      unregister = undefined;
      clearTimeout(expiry);
    };
    const endWith = (e: ApiError) => {
      if (ex.aborted || ended) return;
      ended = true;
      cleanup();
      // In the stream's own dialect: ours ends with {done, error}; OpenAI's with an error and [DONE].
      const frames = ex.agentNft !== undefined && isOpenAiPath(ex.path)
        ? [JSON.stringify(openaiError(e)), DONE]
        : [JSON.stringify({ done: true, incomplete: true, error: { code: e.code, message: e.message, details: e.details } })];
      res.cork(() => {
        for (const f of frames) res.write('data: ' + f + '\n\n');
        res.end();
      });
      ex.abort(); // stops the producer (its onAbort callbacks), nothing more is written
      this.finish(ex);
    };
    // Also the last resort of a stream past its deadline or still open at shutdown.
    ex.endStream = endWith;
    if (ex.auth) {
      unregister = this.deps.live?.add(ex.auth.sid, { kind: 'sse', end: (e) => endWith(e) });
      const msLeft = ex.auth.exp * 1000 - Date.now();
      expiry = setTimeout(() => endWith(new ApiError('TOKEN_EXPIRED', 'The access token has expired; refresh it')), Math.max(0, Math.min(msLeft, 2 ** 31 - 1)));
      expiry.unref();
      ex.onAbort(cleanup);
    }
    const sink: SseSink = {
      send: (data) => {
        if (ex.aborted || ended) return false;
        let ok = false;
        res.cork(() => {
          ok = res.write('data: ' + data + '\n\n');
        });
        return ok;
      },
      onDrain: (cb) => {
        drainCb = cb;
      },
      onAbort: (cb) => ex.onAbort(cb),
      onDeadline: (cb) => ex.onDeadline(cb),
      end: () => {
        if (ex.aborted || ended) return;
        ended = true;
        cleanup();
        res.cork(() => res.end());
        this.finish(ex);
      },
      get aborted() {
        return ex.aborted;
      },
    };
    start(sink);
  }

  /** Logs, counts and audits an exchange once it is answered or aborted. */
  private finish(ex: Exchange): void {
    // Called once per exchange: on reply, on stream end, or on abort, whichever comes first.
    if (!this.inflight.delete(ex)) return;
    const ms = performance.now() - ex.start;
    const status = ex.aborted && !ex.streaming ? 499 : ex.status;
    const routeLabel = ex.route || 'unmatched';
    this.deps.metrics.observeRequest(routeLabel, ex.method, status, ms / 1000);
    // One line per request (refused ones at debug: a flood must not fill the log either); the
    // level check first, so a quiet server builds no child logger.
    const level = ex.refused ? 'debug' : 'info';
    if (this.deps.log.isLevelEnabled(level)) {
      ex.log[level](
        { method: ex.method, url: ex.fullPath, route: routeLabel, status, ms: Math.round(ms * 100) / 100, wallet: ex.auth?.sub, nft: ex.nft ?? ex.agentNft },
        'request',
      );
    }
    const audit = this.deps.audit;
    if (!audit) return;
    const entry: AuditEntry = {
      ts: Date.now(), requestId: ex.id, wallet: ex.auth?.sub, nft: ex.nft ?? ex.agentNft ?? ex.auth?.nft,
      // An invented method is stored as OTHER (it is one metric label too).
      method: KNOWN_METHODS.has(ex.method) ? ex.method : 'OTHER',
      route: ex.agentNft !== undefined ? `/agents/:nft${ex.route}` : routeLabel, status, ip: this.clientIp(ex), durationMs: ms,
      clientRequestId: ex.clientRequestId,
    };
    if (ex.refused && audit.refused) audit.refused(entry);
    else audit.record(entry);
  }

  /**
   * Every exchange has a deadline: a request its requestTimeoutMs (answered 504), a stream its
   * streamTimeoutMs: its producer is told to stop (the turn ends, stores what it had and writes
   * its final frame); one that has not ended STREAM_END_GRACE_MS later is ended here.
   */
  private checkDeadlines(): void {
    const limit = this.deps.config.requestTimeoutMs;
    const streamLimit = this.deps.config.streamTimeoutMs;
    const now = performance.now();
    for (const ex of this.inflight) {
      if (ex.aborted) continue;
      if (ex.streaming) {
        if (now - ex.start < streamLimit) continue;
        if (!ex.deadlineAt) ex.deadline(now);
        else if (now - ex.deadlineAt >= STREAM_END_GRACE_MS) {
          ex.endStream?.(new ApiError('TIMEOUT', `The stream did not complete within ${streamLimit} ms`, { timeout_ms: streamLimit }));
          ex.abort();
        }
        continue;
      }
      if (ex.done || now - ex.start < limit) continue;
      const err = new ApiError('TIMEOUT', `The request did not complete within ${limit} ms`, { timeout_ms: limit });
      this.fail(ex, err);
      ex.abort(err);
    }
  }
}

// The constant security headers as one block: uWS writes `key: value\r\n` verbatim, so one
// writeHeader call carries them all (one crossing into C++ per response instead of four or five).
const SECURITY_HEADERS = 'nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nCache-Control: no-store';
const SECURITY_HEADERS_PROD = SECURITY_HEADERS + '\r\nStrict-Transport-Security: max-age=31536000; includeSubDomains';

function writeSecurityHeaders(res: HttpResponse, production: boolean): void {
  res.writeHeader('X-Content-Type-Options', production ? SECURITY_HEADERS_PROD : SECURITY_HEADERS);
}

function parseJson(raw: Buffer | undefined): unknown {
  if (!raw || raw.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ApiError('INVALID_REQUEST', 'The request body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError('INVALID_REQUEST', 'The request body must be a JSON object');
  }
  return value;
}

function parseQuery(qs: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!qs) return out;
  for (const [k, v] of new URLSearchParams(qs)) out[k] = v;
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
