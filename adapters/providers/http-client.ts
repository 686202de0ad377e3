import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../src/logger.js';
import type { HealthReport } from '../../src/providers/provider.js';
import { safeGet, PrivateEndpointError } from './endpoint-guard.js';
import { checkProviderCall, guardedDispatcher, ProviderCallRefused } from './provider-guard.js';

/**
 * The one HTTP client both remote provider adapters use (global fetch, so connections are
 * pooled by undici and bounded by the actor's p-queue, never by us).
 *
 * Every attempt has a timeout. Idempotent calls (GET, DELETE) retry with exponential backoff and
 * full jitter on 429 (honouring Retry-After), 5xx and network errors. A POST is retried here only
 * when it cannot have been processed (429, connection refused): any other failure may have gone
 * through, so the caller reconciles (looks the resource up) before it tries again.
 */

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RetryPolicy {
  /** attempts in total, the first included */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** upper bound on a server's Retry-After we are willing to wait */
  maxRetryAfterMs: number;
}

const MAX_PROVIDER_MESSAGE = 64 * 1024;

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8_000, maxRetryAfterMs: 30_000 };

export interface HttpClientOptions {
  /** used in messages: "Akash", "SecretVM" */
  service: string;
  baseUrl: string;
  /** auth headers, asked for on each call so a key is never copied into an error or log */
  headers: () => Record<string, string>;
  timeoutMs: number;
  retry?: Partial<RetryPolicy>;
  log: Logger;
  /**
   * Runs each HTTP call through the provider's p-queue (bounded concurrency and rate), so 1,000
   * deploys waiting on bids do not open 1,000 connections to the provider.
   */
  limit?: CallLimiter;
}

export type CallLimiter = <T>(call: () => Promise<T>) => Promise<T>;

export interface RequestOptions {
  query?: Record<string, string | number>;
  json?: unknown;
  form?: FormData;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  /** parsed JSON, or the text when the body is not JSON, or undefined when empty */
  body: unknown;
}

/**
 * A call that did not end in a 2xx. `maybeApplied` is true when a non-idempotent call may have
 * taken effect anyway (5xx, timeout, network failure): the caller must reconcile before a retry.
 */
export class ProviderHttpError extends Error {
  constructor(
    message: string,
    readonly method: HttpMethod,
    readonly path: string,
    /** 0 when no answer came (timeout, network) */
    readonly status: number,
    /** the provider's own message from its { error, message } body, if any */
    readonly providerMessage: string | undefined,
    readonly timedOut: boolean,
    readonly maybeApplied: boolean,
  ) {
    super(message);
    this.name = 'ProviderHttpError';
  }
}

export class HttpClient {
  private readonly retry: RetryPolicy;

  constructor(private readonly opts: HttpClientOptions) {
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
  }

  get timeoutMs(): number {
    return this.opts.timeoutMs;
  }

  async request(method: HttpMethod, path: string, ro: RequestOptions = {}): Promise<HttpResponse> {
    const idempotent = method === 'GET' || method === 'DELETE';
    const url = this.url(path, ro.query);
    let attempt = 0;
    for (;;) {
      attempt++;
      ro.signal?.throwIfAborted();
      let res: Response;
      let body: unknown;
      try {
        // The guard right before the request leaves (after any wait in the limiter's queue).
        const call = () => {
          checkProviderCall(ro.signal);
          return this.once(method, url, ro);
        };
        ({ res, body } = this.opts.limit ? await this.opts.limit(call) : await call());
      } catch (e) {
        if (e instanceof ProviderCallRefused) throw e;
        // Refused at the socket (guardedDispatcher): fetch wraps it as "fetch failed".
        if ((e as { cause?: unknown })?.cause instanceof ProviderCallRefused) throw (e as { cause: ProviderCallRefused }).cause;
        if (isAbortFromCaller(e, ro.signal)) throw ro.signal!.reason ?? e;
        const timedOut = isTimeout(e);
        const what = timedOut ? `no answer within ${this.opts.timeoutMs} ms` : `network error (${errorCode(e)})`;
        // A refused connection never reached the server; anything else may have been processed.
        const unsent = errorCode(e) === 'ECONNREFUSED';
        if ((idempotent || unsent) && attempt < this.retry.attempts) {
          await this.pause(this.backoff(attempt), method, path, what, attempt, ro.signal);
          continue;
        }
        throw new ProviderHttpError(`${this.opts.service} ${method} ${path}: ${what}`, method, path, 0, undefined, timedOut, !idempotent && !unsent);
      }
      if (res.status >= 200 && res.status < 300) return { status: res.status, headers: res.headers, body };
      const retryable = res.status === 429 || res.status >= 500;
      // 429 = refused before processing, so even a POST may repeat it.
      if (retryable && (idempotent || res.status === 429) && attempt < this.retry.attempts) {
        const wait = res.status === 429 ? this.retryAfter(res.headers, attempt) : this.backoff(attempt);
        await this.pause(wait, method, path, `HTTP ${res.status}`, attempt, ro.signal);
        continue;
      }
      const providerMessage = messageOf(body);
      throw new ProviderHttpError(
        `${this.opts.service} ${method} ${path} answered ${res.status}${providerMessage ? `: ${providerMessage}` : ''}`,
        method, path, res.status, providerMessage, false, !idempotent && res.status >= 500,
      );
    }
  }

  private url(path: string, query?: Record<string, string | number>): string {
    const u = new URL(this.opts.baseUrl.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(query ?? {})) u.searchParams.set(k, String(v));
    return u.toString();
  }

  private async once(method: HttpMethod, url: string, ro: RequestOptions): Promise<{ res: Response; body: unknown }> {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const signal = ro.signal ? AbortSignal.any([ro.signal, timeout]) : timeout;
    const headers: Record<string, string> = { accept: 'application/json', ...this.opts.headers() };
    let payload: string | FormData | undefined;
    if (ro.form) payload = ro.form; // fetch sets the multipart boundary itself
    else if (ro.json !== undefined) {
      payload = JSON.stringify(ro.json);
      headers['content-type'] = 'application/json';
    }
    // The guard runs again right before the request is written (after any connect or pool wait).
    const dispatcher = guardedDispatcher(ro.signal) as RequestInit['dispatcher'];
    const res = await fetch(url, { method, headers, body: payload, signal, redirect: 'error', ...(dispatcher ? { dispatcher } : {}) });
    // The body is read under the same timeout: a server that sends headers then stalls is a hang too.
    const text = await res.text();
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text.slice(0, MAX_PROVIDER_MESSAGE);
      }
    }
    return { res, body };
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  private retryAfter(headers: Headers, attempt: number): number {
    const raw = headers.get('retry-after');
    if (raw) {
      const secs = Number(raw);
      const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(raw) - Date.now();
      if (Number.isFinite(ms) && ms >= 0) return Math.min(ms, this.retry.maxRetryAfterMs);
    }
    return this.backoff(attempt);
  }

  private async pause(ms: number, method: HttpMethod, path: string, why: string, attempt: number, signal?: AbortSignal): Promise<void> {
    this.opts.log.warn({ service: this.opts.service, method, path, why, attempt, retry_in_ms: ms }, 'provider call failed; retrying');
    await sleep(ms, signal);
  }
}

/** Sleeps, waking early (with the abort reason) when the signal fires. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (e) {
    throw signal?.reason ?? e;
  }
}

/** Bytes of a health answer read at most (a provider's endpoint could stream forever). */
export const HEALTH_BODY_LIMIT = 16 * 1024;

/**
 * GET {endpoint}/health with a timeout, no retries (one observation), under the SSRF rules of endpoint-guard: public addresses only (unless
 * allowPrivate), redirects re-checked, at most HEALTH_BODY_LIMIT bytes read.
 */
export async function checkHealth(endpointUrl: string, timeoutMs: number, signal?: AbortSignal, allowPrivate = false): Promise<HealthReport> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  try {
    const res = await safeGet(`${endpointUrl.replace(/\/+$/, '')}/health`, { allowPrivate, timeoutMs, maxBytes: HEALTH_BODY_LIMIT, signal });
    if (res.status >= 200 && res.status < 300) return { ok: true, latency_ms: took(), message: 'healthy' };
    return { ok: false, latency_ms: took(), message: `health check answered HTTP ${res.status}` };
  } catch (e) {
    if (isAbortFromCaller(e, signal)) throw signal!.reason ?? e;
    if (e instanceof PrivateEndpointError) return { ok: false, latency_ms: took(), message: `health check refused: ${e.message}` };
    const why = isTimeout(e) ? `no answer within ${timeoutMs} ms` : `unreachable (${errorCode(e)})`;
    return { ok: false, latency_ms: took(), message: `health check failed: ${why}` };
  }
}

function isAbortFromCaller(e: unknown, signal?: AbortSignal): boolean {
  return Boolean(signal?.aborted) && !isTimeout(e);
}

function isTimeout(e: unknown): boolean {
  return e instanceof Error && (e.name === 'TimeoutError' || (e.cause instanceof Error && e.cause.name === 'TimeoutError'));
}

/** A short, secret-free reason for a network failure (undici hides the errno in `cause`). */
function errorCode(e: unknown): string {
  if (e instanceof Error) {
    const cause = e.cause as { code?: string; message?: string } | undefined;
    return cause?.code ?? cause?.message ?? e.message;
  }
  return String(e);
}

/**
 * The provider's message from `{ error, message }` (Akash) or `{ message }` / `{ error }` bodies.
 * Kept whole (bounded): it may quote what we sent, so it is cut only after the adapter scrubbed
 * the secrets out of it (a cut secret would no longer be recognised).
 */
function messageOf(body: unknown): string | undefined {
  if (typeof body === 'string') return body.slice(0, MAX_PROVIDER_MESSAGE) || undefined;
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    const m = b.message ?? b.error ?? b.detail;
    if (typeof m === 'string') return m.slice(0, MAX_PROVIDER_MESSAGE);
  }
  return undefined;
}
