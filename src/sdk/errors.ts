import type { ErrorCode } from '../errors.js';

/** Codes the SDK itself raises when there is no API answer to read one from. */
export type ClientErrorCode = 'NETWORK_ERROR' | 'INVALID_RESPONSE';

/**
 * An API error as thrown by the SDK: the server's `{ error: { code, message, details } }` with
 * the HTTP status. `code` is one of the API's codes (see the OpenAPI document's ErrorCode), or
 * NETWORK_ERROR (status 0) when the server could not be reached, INVALID_RESPONSE when it
 * answered something that is not the API's format.
 */
export class PanthersError extends Error {
  readonly code: ErrorCode | ClientErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  /** X-Request-Id of the answer: the server's log line for this request carries it. */
  readonly requestId: string | undefined;
  /** Seconds, from Retry-After (429, 503). */
  readonly retryAfter: number | undefined;

  constructor(
    code: ErrorCode | ClientErrorCode,
    message: string,
    opts: { status?: number; details?: Record<string, unknown>; requestId?: string; retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PanthersError';
    this.code = code;
    this.status = opts.status ?? 0;
    this.details = opts.details ?? {};
    this.requestId = opts.requestId;
    this.retryAfter = opts.retryAfter;
  }
}

export function isPanthersError(e: unknown): e is PanthersError {
  return e instanceof PanthersError;
}

/** The error object inside an error body or a stream's last frame, as a PanthersError. */
export function errorFromBody(body: unknown, status: number, headers?: { get(name: string): string | null }): PanthersError {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  const requestId = headers?.get('x-request-id') ?? undefined;
  const ra = headers?.get('retry-after');
  const retryAfter = ra != null && /^\d+$/.test(ra) ? Number(ra) : undefined;
  if (!e || typeof e.code !== 'string') {
    return new PanthersError('INVALID_RESPONSE', `HTTP ${status} without an API error body`, { status, requestId, retryAfter });
  }
  const details = e.details && typeof e.details === 'object' ? (e.details as Record<string, unknown>) : {};
  return new PanthersError(e.code as ErrorCode, typeof e.message === 'string' ? e.message : e.code, { status, details, requestId, retryAfter });
}
