import type * as v from 'valibot';
import type { RateClass } from '../config.js';
import type { Logger } from '../logger.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Who the caller is, from a verified access token. */
export interface AuthClaims {
  /** wallet address */
  sub: string;
  /** NFT token id the session was opened for */
  nft: string;
  /** session id */
  sid: string;
  /** expiry, unix seconds */
  exp: number;
  /** issued at, unix seconds */
  iat?: number;
  /** who the token is for: 'orchestrator', or 'agent:{nft}' for an agent-scoped token */
  aud?: string;
  /** who issued it: this process ('self') or an orchestrator known by its JWKS ('orchestrator') */
  issuer?: 'self' | 'orchestrator';
}

/** The request as a handler sees it: plain data, no uWS objects. */
export interface Request<B = unknown, Q = unknown> {
  readonly id: string;
  readonly method: string;
  /** path as routed (without /v1 or the agent prefix) */
  readonly path: string;
  /** the route pattern, e.g. /deployments/:nft_token_id */
  readonly route: string;
  readonly params: Record<string, string>;
  readonly query: Q;
  readonly body: B;
  readonly ip: string;
  /** Set when the route requires auth (or the token was valid on an optional-auth route). */
  readonly auth: AuthClaims | undefined;
  /** For Agent API routes: the NFT whose agent is addressed (Host name or /v1/agents/{nft}). */
  readonly agentNft: string | undefined;
  /** Aborted when the client goes away or the deadline passes. */
  readonly signal: AbortSignal;
  header(name: string): string | undefined;
  readonly log: Logger;
  /** Filled by handlers so the request log line and audit row name the NFT. */
  nft?: string;
}

export interface JsonReply {
  kind: 'json';
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** A server-sent events stream. The server calls start() once headers can be written. */
export interface SseReply {
  kind: 'sse';
  /** extra response headers */
  headers?: Record<string, string>;
  start(sink: SseSink): void;
}

export interface SseSink {
  /** Writes one `data:` event. Returns false when the socket is backed up: wait for onDrain. */
  send(data: string): boolean;
  onDrain(cb: () => void): void;
  /** Called once if the client goes away before end(). */
  onAbort(cb: () => void): void;
  /** Called once when the stream runs past its deadline: stop producing and end it (the server ends it shortly after otherwise). */
  onDeadline(cb: () => void): void;
  end(): void;
  readonly aborted: boolean;
}

export interface TextReply {
  kind: 'text';
  status: number;
  body: string;
  contentType: string;
}

/** A JSON body already serialized (e.g. a cached rendering): sent as is. */
export interface JsonTextReply {
  kind: 'json-text';
  status: number;
  body: string;
}

export type Reply = JsonReply | SseReply | TextReply | JsonTextReply;

export function jsonText(status: number, body: string): JsonTextReply {
  return { kind: 'json-text', status, body };
}

export function json(status: number, body: unknown, headers?: Record<string, string>): JsonReply {
  return { kind: 'json', status, body, headers };
}

export interface RouteDef<B = any, Q = any> {
  method: HttpMethod;
  /** spec path without the /v1 prefix: '/deployments/:nft_token_id' */
  path: string;
  /** the rate-limit class */
  rateClass: RateClass;
  auth: 'none' | 'required' | 'optional';
  /**
   * 'agent': the caller is a remote agent presenting its deployment credential (checked by the
   * handler). Documented as its own security scheme; rate-limited per agent and address.
   */
  credential?: 'agent';
  /** requires an HMAC request signature when PANTHERS_REQUIRE_SIGNED_REQUESTS is on */
  signed?: boolean;
  /** honours an Idempotency-Key header (documented in OpenAPI) */
  idempotent?: boolean;
  body?: v.GenericSchema<unknown, B>;
  query?: v.GenericSchema<unknown, Q>;
  /** for the OpenAPI document */
  summary: string;
  tags?: string[];
  response?: v.GenericSchema;
  successStatus?: number;
  /** documents that `stream: true` answers text/event-stream */
  sse?: boolean;
  /** answered text/plain etc.: excluded from JSON docs */
  raw?: boolean;
  handler(req: Request<B, Q>): Reply | unknown | Promise<Reply | unknown>;
}

export function route<B = undefined, Q = Record<string, string>>(def: RouteDef<B, Q>): RouteDef<B, Q> {
  return def;
}
