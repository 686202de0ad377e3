/**
 * Every error code of the API specification, with its HTTP status and default message.
 * One table, pinned by test/errors.test.ts against the spec's list.
 */
export const ERROR_CODES = {
  UNAUTHORIZED: { status: 401, message: 'Missing or invalid token' },
  FORBIDDEN: { status: 403, message: 'Not authorized for this resource' },
  TOKEN_EXPIRED: { status: 401, message: 'The access token has expired' },
  INVALID_SIGNATURE: { status: 401, message: 'Signature verification failed' },
  NOT_FOUND: { status: 404, message: 'Resource does not exist' },
  ALREADY_EXISTS: { status: 409, message: 'Resource already exists' },
  CONFLICT: { status: 409, message: 'Resource state conflict' },
  INVALID_REQUEST: { status: 400, message: 'Malformed request' },
  MISSING_FIELD: { status: 400, message: 'Required field missing' },
  INVALID_FIELD: { status: 400, message: 'Field validation failed' },
  RATE_LIMITED: { status: 429, message: 'Too many requests' },
  QUOTA_EXCEEDED: { status: 429, message: 'Usage quota exceeded' },
  INTERNAL_ERROR: { status: 500, message: 'Internal server error' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'Service unavailable' },
  TIMEOUT: { status: 504, message: 'Request timeout' },
  // Transport-level answers the spec leaves unnamed; they keep the same body format.
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed on this path' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'Request body too large' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export type ErrorDetails = Record<string, unknown>;

/** An error meant for the client: its code, message and details leave as the spec's body. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message?: string, details: ErrorDetails = {}) {
    // An expected answer, not a bug: skip capturing a stack trace (it was 10% of a 404's cost).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ?? ERROR_CODES[code].message);
    Error.stackTraceLimit = limit;
    this.name = 'ApiError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = details;
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: ErrorDetails };
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

/** Anything thrown becomes an ApiError; unknown errors become INTERNAL_ERROR with no internals. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError('INTERNAL_ERROR');
}

/** One link of an error's `cause` chain, as far as these helpers read it. */
export interface CauseLink {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
}

/** An error, then what caused it, and so on (at most `depth` links): clients wrap the errno. */
export function* causeChain(e: unknown, depth = 5): Generator<CauseLink> {
  for (let x = e as CauseLink | undefined, n = 0; x && typeof x === 'object' && n < depth; x = x.cause as CauseLink | undefined, n++) yield x;
}
