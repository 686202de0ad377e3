import { ApiError } from '../../src/errors.js';

export type RemoteBackendName = 'openai' | 'ollama' | 'llama';

/** The backend is down, refused, answered an error or broke off: the turn cannot complete. */
export function unavailable(backend: RemoteBackendName, why: string, extra: Record<string, unknown> = {}): ApiError {
  return new ApiError('SERVICE_UNAVAILABLE', `The ${backend} model backend is unavailable: ${why}`, { backend, ...extra });
}

/** The backend stalled: no first byte, or no next chunk, within the idle timeout. */
export function stalled(backend: RemoteBackendName, timeoutMs: number): ApiError {
  return new ApiError('TIMEOUT', `The ${backend} model backend sent nothing for ${timeoutMs} ms`, { backend, timeoutMs });
}

/** undici's own timeouts (headers 300 s, body 300 s) count as stalls when they fire before ours. */
const UNDICI_TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection broken',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed mid-stream',
  CERT_HAS_EXPIRED: 'TLS certificate expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed TLS certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted TLS certificate',
};

/** The error code undici or the socket layer attached (fetch wraps it as `cause`). */
function errorCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 4; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const inner = (cur as { errors?: unknown[] }).errors; // AggregateError from happy-eyeballs
    if (Array.isArray(inner) && inner.length > 0) {
      const c = errorCode(inner[0]);
      if (c) return c;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Maps a fetch or body-read failure to TIMEOUT or SERVICE_UNAVAILABLE, never leaking internals. */
export function transportFailure(backend: RemoteBackendName, e: unknown, timeoutMs: number): ApiError {
  const code = errorCode(e);
  if (code && UNDICI_TIMEOUTS.has(code)) return stalled(backend, timeoutMs);
  const reason = (code && NETWORK_REASONS[code]) ?? (e instanceof TypeError && e.message === 'terminated' ? 'connection closed mid-stream' : 'request failed');
  return unavailable(backend, reason, code ? { reason: code } : {});
}

/**
 * An upstream error text fit for a client: the API key and anything shaped like a key or a
 * bearer token removed (some servers echo the key they rejected), cut short.
 */
export function redactSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  out = out
    .replace(/\b(sk|pk|rk)-[A-Za-z0-9_\-*.]{8,}/g, '[redacted]')
    .replace(/\bBearer\s+\S+/gi, 'Bearer [redacted]')
    .replace(/\s+/g, ' ')
    .trim();
  return out.length > 300 ? `${out.slice(0, 297)}...` : out;
}

/** The message of an error object in any of the shapes LLM servers use. */
export function upstreamErrorMessage(json: unknown): string | undefined {
  if (!json || typeof json !== 'object') return undefined;
  const o = json as { error?: unknown; message?: unknown; detail?: unknown };
  if (typeof o.error === 'string') return o.error;
  if (o.error && typeof o.error === 'object') {
    const m = (o.error as { message?: unknown }).message;
    if (typeof m === 'string') return m;
    return 'error';
  }
  if (typeof o.message === 'string') return o.message;
  if (typeof o.detail === 'string') return o.detail;
  return undefined;
}
