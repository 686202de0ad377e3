/**
 * The console's HTTP client: JSON in and out, the access token in the Authorization header
 * (never in a URL), the spec's error body turned into an ApiError with its code, message and
 * details, and a rate-limit refusal carrying the seconds to wait.
 */

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details: Record<string, unknown> = {},
    /** Seconds until a RATE_LIMITED / QUOTA_EXCEEDED request may be retried. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

export interface Credentials {
  accessToken(): string | undefined;
  signingKey(): string | undefined;
  /** Tries to get a fresh access token after TOKEN_EXPIRED; false when the session is over. */
  refresh(): Promise<boolean>;
}

let credentials: Credentials | undefined;

export function useCredentials(c: Credentials): void {
  credentials = c;
}

export interface CallOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  signal?: AbortSignal;
  /** Send the access token (default true when one is held). */
  auth?: boolean;
}

export async function call<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
  const res = await send(method, path, opts);
  return (await res.json()) as T;
}

/** The raw response of a successful call (for streams); throws ApiError otherwise. */
export async function send(method: string, path: string, opts: CallOptions = {}, retried = false): Promise<Response> {
  const target = withQuery(path, opts.query);
  const headers: Record<string, string> = { Accept: 'application/json' };
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const token = opts.auth === false ? undefined : credentials?.accessToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const key = token ? credentials?.signingKey() : undefined;
  if (key && method !== 'GET') Object.assign(headers, await signHeaders(key, method, target, body ?? ''));
  let res: Response;
  try {
    res = await fetch(target, { method, headers, body, signal: opts.signal, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError('NETWORK_ERROR', 'The server cannot be reached; check your connection and try again', 0);
  }
  if (res.ok) return res;
  const err = await toError(res);
  if (err.code === 'TOKEN_EXPIRED' && token && !retried && credentials && (await credentials.refresh())) {
    return send(method, path, opts, true);
  }
  throw err;
}

async function toError(res: Response): Promise<ApiError> {
  let body: { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const e = body?.error;
  const details = e?.details ?? {};
  const header = Number(res.headers.get('Retry-After'));
  const retryAfter = Number.isFinite(header) && header > 0 ? header : typeof details.retry_after === 'number' ? details.retry_after : undefined;
  return new ApiError(e?.code ?? `HTTP_${res.status}`, e?.message ?? `The server answered ${res.status}`, res.status, details, retryAfter);
}

export function withQuery(path: string, query?: Record<string, string | number | undefined>): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** X-Timestamp / X-Signature for servers that require signed requests (HMAC-SHA256, hex key). */
async function signHeaders(keyHex: string, method: string, target: string, body: string): Promise<Record<string, string>> {
  const enc = new TextEncoder();
  const ts = String(Math.floor(Date.now() / 1000));
  const bodyHash = hex(new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(body))));
  const raw = new Uint8Array(keyHex.match(/../g)!.map((b) => parseInt(b, 16)));
  const key = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = await crypto.subtle.sign('HMAC', key, enc.encode(`${ts}\n${method.toUpperCase()}\n${target}\n${bodyHash}`));
  return { 'X-Timestamp': ts, 'X-Signature': hex(new Uint8Array(sig)) };
}

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
