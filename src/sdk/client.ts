import { PanthersError, errorFromBody } from './errors.js';
import { sseData } from './sse.js';
import { ChatStream, streamError, type ErrorObject } from './chat-stream.js';
import { FrameSocket, defaultWebSocketFactory, type WebSocketFactory } from './ws.js';
import { privateKeySigner, providerSigner, signRequest, type Eip1193Provider, type MessageSigner } from './signing.js';
import type {
  AgentHealth, AgentInfo, AgentToken, Challenge, ChatChunk, ChatFinal, ChatRequest, ChatResponse, ClearResponse, Deployment, DeploymentList,
  DeploymentUpdate, DeployRequest, DeployResponse, Health, History, Jwks, ListDeploymentsQuery, RefreshResponse, SessionInfo,
  StopResponse, VerifyRequest, VerifyResponse,
} from './types.js';

/** What a signed-in client holds. Persist it (onTokens) to resume a session later. */
export interface Tokens {
  access_token: string;
  refresh_token: string;
  /** when the access token expires, ms since the epoch (read from the JWT when absent) */
  access_expires_at?: number;
  session_id?: string;
  /** HMAC key for signed requests, when the server requires them */
  signing_key?: string;
  wallet_address?: string;
  nft_token_id?: string;
}

export interface ClientOptions {
  /** the orchestrator, e.g. http://127.0.0.1:3000 (no /v1) */
  baseUrl: string;
  fetch?: typeof fetch;
  /** resume a session */
  tokens?: Tokens;
  /** called after sign-in, each refresh (the refresh token rotates: save the new one) and logout (undefined) */
  onTokens?(tokens: Tokens | undefined): void;
  /** a WebSocket constructor wrapper; default: the global WebSocket, else the `ws` package */
  webSocket?: WebSocketFactory;
  /** attempts after a 429 RATE_LIMITED (default 3) */
  retries?: number;
  /** longest Retry-After the client waits out; a longer one is thrown at once (default 60 s) */
  maxRetryDelayMs?: number;
  /** refresh the access token this long before it expires (default 60 s) */
  refreshMarginMs?: number;
  /** the clock (tests) */
  now?(): number;
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** Where an agent call goes when the agent is remote, and the token it takes there. */
interface AgentTarget {
  /** the agent's endpoint_url (no trailing slash) */
  baseUrl: string;
  /** a valid agent-scoped token (exchanged again when it expires within the margin) */
  token(signal?: AbortSignal): Promise<string>;
  /** the agent refused the token: exchange a new one (once) */
  renew(signal?: AbortSignal): Promise<void>;
}

interface Call {
  method: 'GET' | 'POST' | 'DELETE';
  /** a remote agent: the call goes to its endpoint with an agent token (never the session's) */
  target?: AgentTarget;
  path: string;
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  auth: boolean;
  signal?: AbortSignal;
  /** statuses that are answers, not errors (GET /health answers 503 with its own body) */
  accept?: number[];
}

/** How many times a watch reconnects after a dropped socket or an expired token, in a row. */
const WATCH_RECONNECTS = 5;

/**
 * The Secret Panthers API client: one typed method per endpoint, wallet sign-in, automatic
 * token refresh (before expiry and once on TOKEN_EXPIRED), HMAC request signing when the
 * session has a signing key, retries on RATE_LIMITED honouring Retry-After, chat streams over
 * SSE or WebSocket, and deployment updates as an async iterator.
 */
export class PanthersClient {
  readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private state: Tokens | undefined;
  private refreshing: Promise<void> | undefined;
  private wsFactory: WebSocketFactory | undefined;
  private readonly recentSignatures = new Map<string, number>();
  /** per NFT: how its agent is reached (embedded through us, or remote with its own token) */
  private readonly agentRoutes = new Map<string, Promise<AgentRoute>>();
  private readonly retries: number;
  private readonly maxRetryDelayMs: number;
  private readonly refreshMarginMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(private readonly opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new TypeError('no fetch: pass options.fetch');
    this.fetchFn = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.state = opts.tokens ? { ...opts.tokens } : undefined;
    this.wsFactory = opts.webSocket;
    this.retries = opts.retries ?? 3;
    this.maxRetryDelayMs = opts.maxRetryDelayMs ?? 60_000;
    this.refreshMarginMs = opts.refreshMarginMs ?? 60_000;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? sleep;
  }

  /** The current tokens (undefined when signed out). */
  get tokens(): Tokens | undefined {
    return this.state ? { ...this.state } : undefined;
  }

  setTokens(tokens: Tokens | undefined): void {
    this.state = tokens ? { ...tokens } : undefined;
  }

  // ---- auth -------------------------------------------------------------------------------

  readonly auth = {
    challenge: (body: { wallet_address: string; nft_token_id: string }, o: CallOptions = {}) =>
      this.request<Challenge>({ method: 'POST', path: '/v1/auth/challenge', body, auth: false, signal: o.signal }),
    /** Opens a session; the client keeps its tokens. */
    verify: async (body: VerifyRequest, o: CallOptions = {}) => {
      const r = await this.request<VerifyResponse>({ method: 'POST', path: '/v1/auth/verify', body, auth: false, signal: o.signal });
      this.keep({
        access_token: r.access_token, refresh_token: r.refresh_token, access_expires_at: this.now() + r.expires_in * 1000,
        session_id: r.session_id, signing_key: r.signing_key, wallet_address: body.wallet_address, nft_token_id: body.nft_token_id,
      });
      return r;
    },
    /** Trades the refresh token for new tokens now (the client also does this by itself). */
    refresh: async (o: CallOptions = {}) => {
      await this.refreshNow(undefined, o.signal);
      return this.tokens!;
    },
    /** Revokes the session on the server and forgets the tokens. */
    logout: async (o: CallOptions = {}) => {
      const r = await this.request<{ message: string }>({ method: 'POST', path: '/v1/auth/logout', auth: true, signal: o.signal });
      this.keep(undefined);
      return r;
    },
    session: (o: CallOptions = {}) => this.request<SessionInfo>({ method: 'GET', path: '/v1/auth/session', auth: true, signal: o.signal }),
  };

  /** Signs in with any wallet that can personal_sign: challenge, sign, verify. */
  async signIn(signer: MessageSigner, nftTokenId: string, o: CallOptions = {}): Promise<Tokens> {
    const ch = await this.auth.challenge({ wallet_address: signer.address, nft_token_id: nftTokenId }, o);
    const signature = await signer.signMessage(ch.message);
    await this.auth.verify({ wallet_address: signer.address, nft_token_id: nftTokenId, signature, message: ch.message }, o);
    return this.tokens!;
  }

  /** Scripts and bots: sign in with a secp256k1 private key (hex or bytes). */
  signInWithPrivateKey(privateKey: string | Uint8Array, nftTokenId: string, o: CallOptions = {}): Promise<Tokens> {
    return this.signIn(privateKeySigner(privateKey), nftTokenId, o);
  }

  /** Browsers: sign in with an EIP-1193 wallet (personal_sign). Without `address`, asks the wallet (eth_requestAccounts). */
  async signInWithProvider(provider: Eip1193Provider, address: string | undefined, nftTokenId: string, o: CallOptions = {}): Promise<Tokens> {
    let addr = address;
    if (!addr) {
      const accounts = await provider.request({ method: 'eth_requestAccounts' });
      addr = Array.isArray(accounts) && typeof accounts[0] === 'string' ? accounts[0] : undefined;
      if (!addr) throw new PanthersError('INVALID_REQUEST', 'The wallet shared no account');
    }
    return this.signIn(providerSigner(provider, addr), nftTokenId, o);
  }

  // ---- deployments ------------------------------------------------------------------------

  readonly deployments = {
    create: (body: DeployRequest, o: CallOptions = {}) =>
      this.request<DeployResponse>({ method: 'POST', path: '/v1/deployments', body, auth: true, signal: o.signal }),
    get: (nft: string, o: CallOptions = {}) =>
      this.request<Deployment>({ method: 'GET', path: `/v1/deployments/${seg(nft)}`, auth: true, signal: o.signal }),
    stop: (nft: string, o: CallOptions = {}) =>
      this.request<StopResponse>({ method: 'DELETE', path: `/v1/deployments/${seg(nft)}`, auth: true, signal: o.signal }),
    list: (query: ListDeploymentsQuery = {}, o: CallOptions = {}) =>
      this.request<DeploymentList>({ method: 'GET', path: '/v1/deployments', query: { ...query }, auth: true, signal: o.signal }),
    /**
     * Deployment updates over the WebSocket: first the current state (`snapshot: true`, when there
     * is a deployment), then one update per transition, until the loop breaks or `signal` aborts.
     * Reconnects (refreshing the token first when it expired) and resends the current state.
     */
    watch: (nft: string, o: CallOptions = {}) => this.watchDeployment(nft, o.signal),
  };

  // ---- agents -----------------------------------------------------------------------------

  /**
   * The Agent API of one NFT's agent. Embedded (local) agents are reached through the
   * orchestrator (/v1/agents/{nft}/...); a remote agent is called at its endpoint_url with an
   * agent-scoped token the client exchanges for (and renews) by itself: the session's own token
   * never leaves for a host the orchestrator does not run.
   */
  agent(nft: string): AgentClient {
    return new AgentClient(this, nft);
  }

  /** POST /v1/agents/{nft}/token: a short-lived token only that NFT's agent accepts. */
  agentToken(nft: string, o: CallOptions = {}): Promise<AgentToken> {
    return this.request<AgentToken>({ method: 'POST', path: `/v1/agents/${seg(nft)}/token`, auth: true, signal: o.signal });
  }

  /** @internal how the agent of `nft` is reached (found once per client, renewed with its token) */
  agentRoute(nft: string, signal?: AbortSignal): Promise<AgentRoute> {
    let r = this.agentRoutes.get(nft);
    if (!r) {
      r = this.findAgentRoute(nft, signal);
      this.agentRoutes.set(nft, r);
      // Kept only when the answer is settled (local, or remote with an endpoint).
      r.then((route) => route.kind === 'embedded' && !route.settled && this.forgetAgentRoute(nft), () => this.forgetAgentRoute(nft));
    }
    return r;
  }

  /** @internal the deployment moved (stopped, redeployed): find the agent again next time */
  forgetAgentRoute(nft: string): void {
    this.agentRoutes.delete(nft);
  }

  private async findAgentRoute(nft: string, signal?: AbortSignal): Promise<AgentRoute> {
    // Not signed in, or no deployment: the orchestrator's embedded path answers (or says 404).
    if (!this.state) return { kind: 'embedded', settled: false };
    let d: Deployment;
    try {
      d = await this.deployments.get(nft, { signal });
    } catch (e) {
      if (e instanceof PanthersError && e.code === 'NOT_FOUND') return { kind: 'embedded', settled: false };
      throw e;
    }
    if (d.provider === 'local') return { kind: 'embedded', settled: true };
    // Remote but not serving yet: the embedded path says 404 now; look again next call.
    if (!d.endpoint_url) return { kind: 'embedded', settled: false };
    return new RemoteAgent(this, nft, this.now, this.refreshMarginMs);
  }

  /** A chat turn over the WebSocket, streamed like chatStream. */
  chatOverWs(req: ChatRequest & { nft_token_id?: string }, o: CallOptions = {}): ChatStream {
    return new ChatStream(this.wsChat(req, o.signal));
  }

  /** @internal a chat turn over a remote agent's own /ws */
  chatOverAgentWs(req: ChatRequest, target: AgentTarget, signal?: AbortSignal): ChatStream {
    return new ChatStream(this.wsChat(req, signal, target));
  }

  // ---- monitoring -------------------------------------------------------------------------

  health(o: CallOptions = {}): Promise<Health> {
    return this.request<Health>({ method: 'GET', path: '/v1/health', auth: false, signal: o.signal, accept: [503] });
  }

  jwks(o: CallOptions = {}): Promise<Jwks> {
    return this.request<Jwks>({ method: 'GET', path: '/.well-known/jwks.json', auth: false, signal: o.signal });
  }

  version(o: CallOptions = {}): Promise<{ version: string; api_version: string; openapi: string }> {
    return this.request({ method: 'GET', path: '/v1', auth: false, signal: o.signal });
  }

  openapi(o: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.request({ method: 'GET', path: '/v1/openapi.json', auth: false, signal: o.signal });
  }

  // ---- the request path -------------------------------------------------------------------

  /** @internal a JSON call with auth, signing, refresh and retries */
  async request<T>(call: Call): Promise<T> {
    const res = await this.send(call, 'application/json');
    const text = await res.text();
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new PanthersError('INVALID_RESPONSE', `HTTP ${res.status} with a body that is not JSON`, { status: res.status });
    }
  }

  /** @internal the raw response of a successful call */
  async send(call: Call, accept: string): Promise<Response> {
    let base = call.target?.baseUrl ?? this.baseUrl;
    let url = base + call.path + queryString(call.query);
    const target = new URL(url);
    const body = call.body === undefined ? undefined : JSON.stringify(call.body);
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { accept };
      if (body !== undefined) headers['content-type'] = 'application/json';
      let token: string | undefined;
      if (call.auth && call.target) {
        // A remote agent: its own scoped token; the session's HMAC key stays with the orchestrator.
        token = await call.target.token(call.signal);
        headers.authorization = `Bearer ${token}`;
      } else if (call.auth) {
        token = await this.accessToken(call.signal);
        headers.authorization = `Bearer ${token}`;
        const key = this.state?.signing_key;
        if (key) Object.assign(headers, this.signatureHeaders(key, call.method, target.pathname + target.search, body ?? ''));
      }
      let res: Response;
      try {
        res = await this.fetchFn(url, { method: call.method, headers, body, signal: call.signal });
      } catch (e) {
        if (call.signal?.aborted) throw e;
        if (call.target && !refreshed && (call.method === 'GET' || neverConnected(e))) {
          // The agent may have moved (redeployed elsewhere): a new exchange says where it is now.
          // (A POST is retried only when it never reached anyone: a turn must not run twice.)
          refreshed = true;
          await call.target.renew(call.signal);
          base = call.target.baseUrl;
          url = base + call.path + queryString(call.query);
          attempt--;
          continue;
        }
        throw new PanthersError('NETWORK_ERROR', `Cannot reach ${base}: ${causeOf(e)}`, { cause: e });
      }
      if (res.ok || call.accept?.includes(res.status)) return res;
      const err = errorFromBody(await res.json().catch(() => undefined), res.status, res.headers);
      if (call.target && call.auth && !refreshed && (err.code === 'TOKEN_EXPIRED' || err.code === 'UNAUTHORIZED')) {
        // Expired or revoked there: exchange again (the orchestrator says if the session ended).
        refreshed = true;
        await call.target.renew(call.signal);
        base = call.target.baseUrl;
        url = base + call.path + queryString(call.query);
        attempt--;
        continue;
      }
      if (err.code === 'TOKEN_EXPIRED' && call.auth && !call.target && !refreshed && this.state?.refresh_token) {
        refreshed = true;
        await this.refreshNow(token, call.signal);
        attempt--;
        continue;
      }
      if (err.code === 'RATE_LIMITED' && attempt < this.retries) {
        const delay = err.retryAfter !== undefined ? err.retryAfter * 1000 : backoff(attempt);
        if (delay <= this.maxRetryDelayMs) {
          await this.sleep(delay, call.signal);
          continue;
        }
      }
      throw err;
    }
  }

  /** A fresh access token, refreshed first when it expires within the margin. */
  private async accessToken(signal?: AbortSignal): Promise<string> {
    const s = this.state;
    if (!s) throw new PanthersError('UNAUTHORIZED', 'Not signed in: call signInWithPrivateKey / signInWithProvider, or pass tokens', { status: 401 });
    const exp = s.access_expires_at ?? jwtExpiry(s.access_token);
    if (exp !== undefined && exp - this.now() < this.refreshMarginMs && s.refresh_token) {
      await this.refreshNow(s.access_token, signal);
    }
    return this.state!.access_token;
  }

  /**
   * Refreshes once for everyone waiting: concurrent calls share one POST /auth/refresh (the
   * refresh token rotates, so two refreshes with the same token would end the session). When
   * `stale` is given and the tokens already moved on from it, nothing is done.
   */
  private refreshNow(stale: string | undefined, signal?: AbortSignal): Promise<void> {
    if (stale !== undefined && this.state && this.state.access_token !== stale) return Promise.resolve();
    this.refreshing ??= (async () => {
      const cur = this.state;
      if (!cur?.refresh_token) throw new PanthersError('UNAUTHORIZED', 'No refresh token: sign in again', { status: 401 });
      const r = await this.request<RefreshResponse>({ method: 'POST', path: '/v1/auth/refresh', body: { refresh_token: cur.refresh_token }, auth: false, signal });
      this.keep({ ...cur, access_token: r.access_token, refresh_token: r.refresh_token, access_expires_at: this.now() + r.expires_in * 1000 });
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private keep(tokens: Tokens | undefined): void {
    // Another session (or none): agent tokens of the old one are not ours any more.
    if (!tokens || tokens.session_id !== this.state?.session_id) this.agentRoutes.clear();
    this.state = tokens;
    this.opts.onTokens?.(this.tokens);
  }

  /**
   * X-Timestamp and X-Signature. The server accepts each signature once, so a request identical
   * to one signed in the same second gets the next second's timestamp (inside the server's window).
   */
  private signatureHeaders(key: string, method: string, path: string, body: string): Record<string, string> {
    const nowSec = Math.floor(this.now() / 1000);
    let ts = nowSec;
    let sig = signRequest(key, method, path, body, ts);
    while (this.recentSignatures.has(sig)) sig = signRequest(key, method, path, body, ++ts);
    if (this.recentSignatures.size >= 1000) {
      for (const [s, t] of this.recentSignatures) if (t < nowSec - 1) this.recentSignatures.delete(s);
    }
    this.recentSignatures.set(sig, ts);
    return { 'x-timestamp': String(ts), 'x-signature': sig };
  }

  // ---- WebSocket --------------------------------------------------------------------------

  /** @internal opens /ws with a fresh token */
  async openSocket(signal?: AbortSignal, target?: AgentTarget): Promise<{ socket: FrameSocket; token: string }> {
    this.wsFactory ??= await defaultWebSocketFactory();
    const token = target ? await target.token(signal) : await this.accessToken(signal);
    const url = (target?.baseUrl ?? this.baseUrl).replace(/^http/, 'ws') + '/ws?token=' + encodeURIComponent(token);
    return { socket: await FrameSocket.open(this.wsFactory, url, signal), token };
  }

  private async *watchDeployment(nft: string, signal?: AbortSignal): AsyncGenerator<DeploymentUpdate> {
    let failures = 0;
    while (!signal?.aborted) {
      const { socket, token } = await this.openSocket(signal);
      const onAbort = () => socket.close();
      signal?.addEventListener('abort', onAbort, { once: true });
      let expired = false;
      try {
        socket.send({ type: 'subscribe', channel: 'deployment', nft_token_id: nft });
        for (let f = await socket.next(); f; f = await socket.next()) {
          if (f.type === 'subscribed' && f.channel === 'deployment') {
            failures = 0;
            const d = f.deployment as Deployment | null;
            if (d) yield snapshotUpdate(d);
          } else if (f.type === 'deployment_status' && f.nft_token_id === nft) {
            yield f as unknown as DeploymentUpdate;
          } else if (f.type === 'error') {
            const err = streamError(f.error as ErrorObject);
            if (err.code !== 'TOKEN_EXPIRED') throw err;
            expired = true;
          }
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        socket.close();
      }
      if (signal?.aborted) return;
      if (++failures > WATCH_RECONNECTS) {
        throw new PanthersError('NETWORK_ERROR', `The deployment watch lost its WebSocket ${WATCH_RECONNECTS} times in a row (last close ${socket.closeCode})`);
      }
      if (expired || socket.closeCode === 4001) await this.refreshNow(token, signal);
      else await this.sleep(backoff(failures - 1), signal);
    }
  }

  private async *wsChat(req: ChatRequest & { nft_token_id?: string }, signal?: AbortSignal, target?: AgentTarget): AsyncGenerator<ChatChunk, ChatFinal> {
    const { socket } = await this.openSocket(signal, target);
    const onAbort = () => socket.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      socket.send({ type: 'chat_stream', message: req.message, nft_token_id: req.nft_token_id, conversation_id: req.conversation_id });
      let conversation = req.conversation_id;
      for (let f = await socket.next(); f; f = await socket.next()) {
        if (f.type === 'subscribed' && f.channel === 'chat') {
          conversation ??= f.conversation_id as string;
        } else if (f.type === 'chat_chunk' && (conversation === undefined || f.conversation_id === conversation)) {
          if (!f.done) {
            yield { content: f.content as string };
            continue;
          }
          if (f.error) throw streamError(f.error as ErrorObject);
          return {
            response: f.response as string, conversation_id: f.conversation_id as string, timestamp: f.timestamp as string,
            tokens_used: f.tokens_used as number, incomplete: Boolean(f.incomplete),
          };
        } else if (f.type === 'error') {
          throw streamError(f.error as ErrorObject);
        }
      }
      if (signal?.aborted) throw new PanthersError('NETWORK_ERROR', 'Aborted', { cause: signal.reason });
      throw new PanthersError('NETWORK_ERROR', `The WebSocket closed before the answer ended (${socket.closeCode} ${socket.closeReason})`.trim());
    } finally {
      signal?.removeEventListener('abort', onAbort);
      socket.close();
    }
  }
}

type AgentRoute = { kind: 'embedded'; settled: boolean } | RemoteAgent;

/**
 * A remote agent as the client sees it: its endpoint and an agent-scoped token, exchanged at the
 * orchestrator when first needed and again shortly before it expires (or when the agent refuses
 * it). Each exchange also re-reads endpoint_url, so a redeploy elsewhere is followed.
 */
class RemoteAgent implements AgentTarget {
  readonly kind = 'remote';
  baseUrl = '';
  private token_: string | undefined;
  private expiresAt = 0;
  private exchanging: Promise<void> | undefined;

  constructor(
    private readonly client: PanthersClient,
    private readonly nft: string,
    private readonly now: () => number,
    private readonly marginMs: number,
  ) {}

  /** Exchanges now when there is no token yet (so baseUrl is known before the first call). */
  async ready(signal?: AbortSignal): Promise<this> {
    if (!this.token_) await this.renew(signal);
    return this;
  }

  async token(signal?: AbortSignal): Promise<string> {
    // An agent token lives minutes: renew at a fraction of its life, not the session's margin.
    if (!this.token_ || this.expiresAt - this.now() < Math.min(this.marginMs, 30_000)) await this.renew(signal);
    return this.token_!;
  }

  renew(signal?: AbortSignal): Promise<void> {
    this.exchanging ??= (async () => {
      let t: AgentToken;
      try {
        t = await this.client.agentToken(this.nft, { signal });
      } catch (e) {
        // No live deployment any more: the next call looks the agent up again.
        if (e instanceof PanthersError && e.code === 'NOT_FOUND') this.client.forgetAgentRoute(this.nft);
        throw e;
      }
      this.token_ = t.access_token;
      this.expiresAt = this.now() + t.expires_in * 1000;
      this.baseUrl = t.endpoint_url.replace(/\/+$/, '');
    })().finally(() => {
      this.exchanging = undefined;
    });
    return this.exchanging;
  }
}

/** The Agent API of one NFT's agent: through the orchestrator (embedded) or at its endpoint (remote). */
export class AgentClient {
  private readonly base: string;

  constructor(private readonly client: PanthersClient, readonly nft: string) {
    this.base = `/v1/agents/${seg(nft)}`;
  }

  /** Whether this agent is called at its own endpoint with an agent-scoped token. */
  async isRemote(o: CallOptions = {}): Promise<boolean> {
    return (await this.client.agentRoute(this.nft, o.signal)).kind === 'remote';
  }

  health(o: CallOptions = {}): Promise<AgentHealth> {
    return this.call({ method: 'GET', path: '/health', auth: false, signal: o.signal });
  }

  info(o: CallOptions = {}): Promise<AgentInfo> {
    return this.call({ method: 'GET', path: '/info', auth: false, signal: o.signal });
  }

  /** One whole answer (waits for the full turn). */
  chat(req: string | ChatRequest, o: CallOptions = {}): Promise<ChatResponse> {
    return this.call({ method: 'POST', path: '/chat', body: chatBody(req), auth: true, signal: o.signal });
  }

  /** The answer as it is written (SSE): iterate the chunks, then `await stream.final`. */
  chatStream(req: string | ChatRequest, o: CallOptions = {}): ChatStream {
    return new ChatStream(this.sseChat(chatBody(req), o.signal));
  }

  /** The same over the WebSocket (the orchestrator's, or a remote agent's own). */
  chatOverWs(req: string | ChatRequest, o: CallOptions = {}): ChatStream {
    const body = chatBody(req);
    const client = this.client;
    const nft = this.nft;
    async function* run(): AsyncGenerator<ChatChunk, ChatFinal> {
      const route = await client.agentRoute(nft, o.signal);
      const stream = route.kind === 'remote'
        ? client.chatOverAgentWs(body, await route.ready(o.signal), o.signal)
        : client.chatOverWs({ ...body, nft_token_id: nft }, o);
      for await (const c of stream) yield c;
      return stream.final;
    }
    return new ChatStream(run());
  }

  history(query: { conversation_id: string; limit?: number; offset?: number }, o: CallOptions = {}): Promise<History> {
    return this.call({ method: 'GET', path: '/chat/history', query, auth: true, signal: o.signal });
  }

  clear(conversationId: string, o: CallOptions = {}): Promise<ClearResponse> {
    return this.call({ method: 'POST', path: '/chat/clear', body: { conversation_id: conversationId }, auth: true, signal: o.signal });
  }

  /** The call at the orchestrator's /v1/agents/{nft} or at a remote agent's /v1. */
  private async resolve(call: Omit<Call, 'target'>): Promise<Call> {
    const route = await this.client.agentRoute(this.nft, call.signal);
    if (route.kind === 'embedded') return { ...call, path: this.base + call.path };
    return { ...call, path: '/v1' + call.path, target: await route.ready(call.signal) };
  }

  private async call<T>(call: Omit<Call, 'target'>): Promise<T> {
    return this.client.request<T>(await this.resolve(call));
  }

  private async *sseChat(body: ChatRequest, signal?: AbortSignal): AsyncGenerator<ChatChunk, ChatFinal> {
    const res = await this.client.send(await this.resolve({ method: 'POST', path: '/chat', body: { ...body, stream: true }, auth: true, signal }), 'text/event-stream');
    if (!res.body || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      throw new PanthersError('INVALID_RESPONSE', `Expected text/event-stream, got ${res.headers.get('content-type')}`, { status: res.status });
    }
    for await (const data of sseData(res.body, signal)) {
      let ev: Record<string, unknown>;
      try {
        ev = JSON.parse(data) as Record<string, unknown>;
      } catch {
        throw new PanthersError('INVALID_RESPONSE', 'An event of the chat stream is not JSON');
      }
      if (!ev.done) {
        yield { content: String(ev.content ?? '') };
        continue;
      }
      if (ev.error) throw streamError(ev.error as ErrorObject);
      return {
        response: ev.response as string, conversation_id: ev.conversation_id as string, timestamp: ev.timestamp as string,
        tokens_used: ev.tokens_used as number, incomplete: Boolean(ev.incomplete),
      };
    }
    throw new PanthersError('NETWORK_ERROR', 'The chat stream ended before its last event');
  }
}

export function createClient(opts: ClientOptions): PanthersClient {
  return new PanthersClient(opts);
}

function chatBody(req: string | ChatRequest): ChatRequest {
  return typeof req === 'string' ? { message: req } : { message: req.message, conversation_id: req.conversation_id };
}

function snapshotUpdate(d: Deployment): DeploymentUpdate {
  return {
    type: 'deployment_status', deployment_id: d.deployment_id, nft_token_id: d.nft_token_id, status: d.status, progress: d.progress,
    message: d.error ?? `deployment is ${d.status}`, endpoint_url: d.endpoint_url, timestamp: d.updated_at, snapshot: true,
  };
}

function seg(s: string): string {
  return encodeURIComponent(s);
}

function queryString(q: Record<string, string | number | undefined> | undefined): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Exponential backoff with jitter when no Retry-After says how long: ~0.5, 1, 2 s ... capped at 10 s. */
function backoff(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

/** `exp` of a JWT, ms since the epoch; undefined when it is not a readable JWT. */
function jwtExpiry(token: string): number | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const json = new TextDecoder().decode(base64UrlDecode(part));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function base64UrlDecode(s: string): Uint8Array {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The request failed before any connection was made (so nothing could have been done). */
function neverConnected(e: unknown): boolean {
  const code = ((e as { cause?: { code?: unknown } }).cause?.code ?? '') as string;
  return ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'].includes(code);
}

function causeOf(e: unknown): string {
  const c = (e as { cause?: unknown }).cause;
  return c instanceof Error ? c.message : e instanceof Error ? e.message : String(e);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
