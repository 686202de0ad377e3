import { ERROR_CODES } from '../errors.js';
import { SIGNATURE_WINDOW_SEC } from '../guards/request-signing.js';

const ref = (to: string) => ({ $ref: `#/components/${to}` });

/** The shared pieces every operation points at: the Error body, headers, security, WS frames. */
export function components(): Record<string, unknown> {
  return {
    securitySchemes: {
      bearerAuth: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description:
          'An access token from POST /v1/auth/verify (1 hour; EdDSA JWT, keys at /.well-known/jwks.json). ' +
          'Renew it with POST /v1/auth/refresh, which also rotates the refresh token. An expired token answers 401 TOKEN_EXPIRED. ' +
          'Every token has an audience (`aud`): session tokens are `orchestrator` and work on the orchestrator API and its embedded agents; ' +
          'POST /v1/agents/{nft_token_id}/token trades one for an agent-scoped token (`agent:{nft}`, at most 15 minutes, bound to the session) ' +
          'that only that NFT\'s agent accepts, embedded or remote, and that an agent\'s own POST /auth/verify also issues. ' +
          'A token presented where its audience is not accepted answers 401 UNAUTHORIZED with details.reason `wrong_audience`; ' +
          'one of a revoked session 401 UNAUTHORIZED (`session_revoked` at a remote agent), one issued before the NFT changed hands 401 UNAUTHORIZED (`ownership_lost`), ' +
          'and a remote agent that could not pull its revocation list recently answers 503 SERVICE_UNAVAILABLE (`revocations_stale`) rather than accept it unchecked.',
      },
      agentCredential: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'pac_<deployment>.<mac>',
        description:
          'The per-deployment credential a remote agent is started with (PANTHERS_AGENT_CREDENTIAL, in its secrets): it answers only about that ' +
          'deployment\'s NFT (owner, revocations) and stops working when the deployment is stopped or failed.',
      },
    },
    schemas: {
      ErrorCode: {
        type: 'string',
        enum: Object.keys(ERROR_CODES),
        description: 'Every code the API answers with; the HTTP status of each is fixed: ' +
          Object.entries(ERROR_CODES).map(([c, e]) => `${c} ${e.status}`).join(', ') + '.',
      },
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message', 'details'],
            properties: {
              code: ref('schemas/ErrorCode'),
              message: { type: 'string' },
              details: { type: 'object', additionalProperties: true, description: 'e.g. { field, reason } for validation codes, { retry_after } for RATE_LIMITED' },
            },
          },
        },
      },
      Pagination: {
        type: 'object',
        required: ['total', 'limit', 'offset', 'has_more'],
        properties: { total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' }, has_more: { type: 'boolean' } },
      },
      ChatChunk: {
        type: 'object',
        description: 'One SSE `data:` event per piece of the answer.',
        required: ['content', 'done'],
        properties: { content: { type: 'string' }, done: { const: false } },
      },
      ChatFinal: {
        type: 'object',
        description: 'The last SSE `data:` event; `error` is set (and `incomplete` true) when the turn failed midway.',
        required: ['response', 'conversation_id', 'timestamp', 'tokens_used', 'incomplete', 'done'],
        properties: {
          response: { type: 'string' }, conversation_id: { type: 'string' }, timestamp: { type: 'string', format: 'date-time' },
          tokens_used: { type: 'integer' }, incomplete: { type: 'boolean' }, done: { const: true },
          error: { $ref: '#/components/schemas/Error/properties/error' },
        },
      },
      DeploymentStatusFrame: {
        type: 'object',
        description: 'WebSocket: sent to subscribers of an NFT\'s deployment channel on each transition.',
        required: ['type', 'deployment_id', 'nft_token_id', 'status', 'progress', 'message', 'endpoint_url', 'timestamp'],
        properties: {
          type: { const: 'deployment_status' }, deployment_id: { type: 'string' }, nft_token_id: { type: 'string' },
          status: { enum: ['pending', 'deploying', 'running', 'stopping', 'stopped', 'failed'] }, progress: { type: 'number' },
          message: { type: 'string' }, endpoint_url: { type: ['string', 'null'] }, timestamp: { type: 'string', format: 'date-time' },
        },
      },
      ChatChunkFrame: {
        type: 'object',
        description: 'WebSocket: one piece of an answer (done: false), then a last frame with done: true and the whole response.',
        required: ['type', 'conversation_id', 'content', 'done'],
        properties: {
          type: { const: 'chat_chunk' }, conversation_id: { type: 'string' }, nft_token_id: { type: 'string' }, content: { type: 'string' },
          done: { type: 'boolean' }, response: { type: 'string' }, timestamp: { type: 'string' }, tokens_used: { type: 'integer' },
          incomplete: { type: 'boolean' }, error: { $ref: '#/components/schemas/Error/properties/error' },
        },
      },
    },
    headers: {
      'X-Request-Id': { description: 'The server\'s id of this request (in its log line and audit row); a caller\'s own X-Request-Id is recorded beside it, not used as it.', schema: { type: 'string' } },
      'X-RateLimit-Limit': { description: 'Requests allowed per minute in this route\'s rate class (see x-rate-class).', schema: { type: 'integer' } },
      'X-RateLimit-Remaining': { description: 'Requests left in the current window.', schema: { type: 'integer' } },
      'X-RateLimit-Reset': { description: 'When the window resets, unix seconds.', schema: { type: 'integer' } },
      'Retry-After': { description: 'Seconds to wait before retrying (429 RATE_LIMITED, 503 overload).', schema: { type: 'integer' } },
    },
    parameters: {
      IdempotencyKey: {
        name: 'Idempotency-Key', in: 'header', required: false,
        description:
          'Makes a retry safe: a request sent again with the same key (same wallet, same route, same request) is answered with the first ' +
          'result (`Idempotent-Replayed: true`) and stores nothing twice. The same key with a different request is 409 CONFLICT; a retry ' +
          'while the first still runs is 409 CONFLICT with details.state "in_progress" (retry shortly), after a restart that cut it short ' +
          '"interrupted" (read back what it stored, then use a new key). A request that left nothing (refused, or cancelled before the ' +
          'model started) frees its key. Keys are remembered for PANTHERS_IDEMPOTENCY_TTL_MS (default 24 h).',
        schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
      },
      XSignature: {
        name: 'X-Signature', in: 'header', required: false,
        description:
          'Required when the server runs with PANTHERS_REQUIRE_SIGNED_REQUESTS=true: hex HMAC-SHA256 with the session\'s signing_key ' +
          '(hex, from /auth/verify) over `timestamp \\n METHOD \\n path?query \\n sha256hex(body)`. Each signature is accepted once.',
        schema: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
      },
      XTimestamp: {
        name: 'X-Timestamp', in: 'header', required: false,
        description: `Unix seconds of the signature; refused when more than ${SIGNATURE_WINDOW_SEC} s from the server clock.`,
        schema: { type: 'string', pattern: '^\\d{1,12}$' },
      },
    },
  };
}

/** The response headers every answer carries (rate-limit headers when limits are on). */
export function commonHeaders(extra: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const h of ['X-Request-Id', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', ...extra]) out[h] = ref(`headers/${h}`);
  return out;
}
