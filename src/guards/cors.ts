/**
 * CORS for the configured origins (PANTHERS_CORS_ORIGINS, comma-separated, `*` for any).
 * A disallowed origin gets no CORS headers at all, so the browser blocks it. With a list of
 * origins the allowed one is echoed back with credentials; with `*` credentials are never
 * allowed (browsers refuse `*` with credentials).
 */
export class Cors {
  private readonly any: boolean;
  private readonly origins: Set<string>;

  constructor(origins: string[]) {
    this.any = origins.includes('*');
    this.origins = new Set(origins.filter((o) => o !== '*').map((o) => o.replace(/\/+$/, '')));
  }

  get enabled(): boolean {
    return this.any || this.origins.size > 0;
  }

  /** Headers for a normal (non-preflight) response, or undefined when none apply. */
  headersFor(origin: string | undefined): Record<string, string> | undefined {
    if (!origin) return undefined;
    if (this.origins.has(origin)) {
      return {
        'Access-Control-Allow-Origin': origin,
        'Access-Control-Allow-Credentials': 'true',
        'Access-Control-Expose-Headers': EXPOSED,
        Vary: 'Origin',
      };
    }
    if (this.any) return { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': EXPOSED };
    return undefined;
  }

  /** Headers for an OPTIONS preflight answer, or undefined when the origin is not allowed. */
  preflight(origin: string | undefined, requestHeaders: string | undefined): Record<string, string> | undefined {
    const base = this.headersFor(origin);
    if (!base) return undefined;
    return {
      ...base,
      'Access-Control-Allow-Methods': 'GET, POST, DELETE, OPTIONS',
      'Access-Control-Allow-Headers': requestHeaders || 'Authorization, Content-Type, X-Request-Id, X-Signature, X-Timestamp',
      'Access-Control-Max-Age': '600',
    };
  }
}

const EXPOSED = 'X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Deprecation, Link';
