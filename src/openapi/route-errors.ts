import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { RouteDef } from '../server/route.js';

/** Codes any route can answer: the pipeline's own (limits, overload, deadline, crashes). */
const ALWAYS: ErrorCode[] = ['RATE_LIMITED', 'INTERNAL_ERROR', 'SERVICE_UNAVAILABLE', 'TIMEOUT'];

/**
 * Codes a few handlers raise beyond what their route definition tells (keyed by route path).
 * The rest follows from the definition: input -> validation codes, auth -> token codes, etc.
 */
const HANDLER_CODES: Record<string, ErrorCode[]> = {
  '/auth/challenge': ['FORBIDDEN'],
  '/auth/verify': ['INVALID_SIGNATURE', 'FORBIDDEN'],
  '/auth/refresh': ['UNAUTHORIZED', 'FORBIDDEN'],
  '/deployments': ['FORBIDDEN', 'ALREADY_EXISTS'],
};

/** The same for Agent API routes (paths under /v1/agents/{nft_token_id}). */
const AGENT_HANDLER_CODES: Record<string, ErrorCode[]> = {
  '/auth/challenge': ['FORBIDDEN'],
  '/auth/verify': ['INVALID_SIGNATURE', 'FORBIDDEN'],
  '/token': ['CONFLICT'],
  '/owner': ['UNAUTHORIZED'],
  '/revocations': ['UNAUTHORIZED'],
};

/**
 * The error codes a route may answer with, derived from its definition: validation codes when
 * it reads a body or query, token codes when it needs auth, INVALID_SIGNATURE when signed,
 * NOT_FOUND when it addresses something by path (or an agent that may not be running).
 */
export function routeErrorCodes(route: RouteDef, kind: 'api' | 'agents'): ErrorCode[] {
  const codes = new Set<ErrorCode>(ALWAYS);
  if (route.body || route.query) for (const c of ['INVALID_REQUEST', 'MISSING_FIELD', 'INVALID_FIELD'] as const) codes.add(c);
  if (route.body || ['POST', 'PUT', 'PATCH', 'DELETE'].includes(route.method)) codes.add('PAYLOAD_TOO_LARGE');
  if (route.auth === 'required') for (const c of ['UNAUTHORIZED', 'TOKEN_EXPIRED', 'FORBIDDEN'] as const) codes.add(c);
  if (route.signed) codes.add('INVALID_SIGNATURE');
  // A key reused with another request, or retried while its first request runs.
  if (route.idempotent) codes.add('CONFLICT');
  if (route.path.includes(':') || kind === 'agents') codes.add('NOT_FOUND');
  if (kind === 'agents' && route.auth !== 'none') codes.add('FORBIDDEN');
  if (route.rateClass === 'chat' && route.method === 'POST') codes.add('QUOTA_EXCEEDED');
  if (kind === 'api') for (const c of HANDLER_CODES[route.path] ?? []) if (route.method === 'POST') codes.add(c);
  if (kind === 'agents') for (const c of AGENT_HANDLER_CODES[route.path] ?? []) codes.add(c);
  // A remote agent answers 503 while it cannot check revocations; the route tables cover it (ALWAYS).
  return [...codes].sort((a, b) => ERROR_CODES[a].status - ERROR_CODES[b].status || a.localeCompare(b));
}

/** Codes grouped by HTTP status, for the responses map. */
export function byStatus(codes: ErrorCode[]): Map<number, ErrorCode[]> {
  const out = new Map<number, ErrorCode[]>();
  for (const c of codes) {
    const s = ERROR_CODES[c].status;
    const list = out.get(s) ?? [];
    list.push(c);
    out.set(s, list);
  }
  return out;
}
