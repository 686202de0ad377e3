import * as v from 'valibot';
import type { Router } from '../server/router.js';
import type { RouteDef } from '../server/route.js';
import { nftTokenId } from '../server/validation.js';
import { ERROR_CODES } from '../errors.js';
import { jsonSchemaOf, queryParamSchema, type SchemaObject } from './json-schema.js';
import { byStatus, routeErrorCodes } from './route-errors.js';
import { commonHeaders, components } from './components.js';
import type { WsMessageHandler } from '../server/ws-server.js';

export interface OpenApiInfo {
  version: string;
  /** the server's public URL, listed under `servers` */
  serverUrl?: string;
}

/** What the common pagination parameters mean, wherever a route reads them. */
const PARAM_HELP: Record<string, string> = {
  limit: 'Page size (at most 100).',
  offset: 'How many items to skip.',
  sort: 'Field to sort by.',
  order: 'Sort direction.',
  status: 'Only deployments in this state.',
  provider: 'Only deployments on this provider.',
  conversation_id: 'The conversation.',
};

const NFT_PARAM_SCHEMA = jsonSchemaOf(nftTokenId);

/**
 * The OpenAPI 3.1 document of the live route tables: every orchestrator route under /v1, every
 * Agent API route under /v1/agents/{nft_token_id}/, built from the same valibot schemas the
 * router validates with, so the document cannot drift from the code.
 */
export function buildOpenApi(
  routers: { api: Router; agents: Router },
  info: OpenApiInfo,
  wsHandlers: Readonly<Record<string, WsMessageHandler>> = {},
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const operationIds = new Set<string>();
  const tags = new Set<string>();
  const add = (route: RouteDef, kind: 'api' | 'agents') => {
    const p = documentedPath(route.path, kind);
    const op = operation(route, kind);
    op.operationId = uniqueId(operationId(route, kind), operationIds);
    for (const t of (op.tags as string[] | undefined) ?? []) tags.add(t);
    (paths[p] ??= {})[route.method.toLowerCase()] = op;
  };
  for (const r of routers.api.routes) add(r, 'api');
  for (const r of routers.agents.routes) add(r, 'agents');
  paths['/ws'] = { get: websocketOperation(wsHandlers) };
  tags.add('websocket');

  return {
    openapi: '3.1.0',
    info: {
      title: 'Secret Panthers API',
      version: info.version,
      description:
        'Wallet sign-in bound to NFT ownership, agent deployments, and streaming chat with each NFT\'s agent. ' +
        'Every route answers at /v1/...; the unprefixed path is a deprecated alias (Deprecation and Link headers). ' +
        'Errors are `{ "error": { code, message, details } }` with the status of their code. ' +
        'Each operation names its rate class in `x-rate-class`; limits are per minute per wallet (per IP without a token).',
    },
    ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
    tags: [...tags].sort().map((name) => ({ name })),
    paths,
    components: components(),
  };
}

/** '/deployments/:nft_token_id' -> '/v1/deployments/{nft_token_id}'; agent routes under /v1/agents/{nft_token_id}. */
export function documentedPath(routePath: string, kind: 'api' | 'agents'): string {
  const templated = routePath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
  if (kind === 'agents') return `/v1/agents/{nft_token_id}${templated === '/' ? '' : templated}`;
  // /v1 itself and /.well-known/* are served as they are (no /v1 prefix, no deprecation).
  if (templated === '/v1' || templated.startsWith('/.well-known/')) return templated;
  return '/v1' + templated;
}

function operation(route: RouteDef, kind: 'api' | 'agents'): Record<string, unknown> {
  const parameters: unknown[] = [];
  const pathParams = new Set([...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!));
  if (kind === 'agents') pathParams.add('nft_token_id');
  for (const name of pathParams) {
    parameters.push({
      name, in: 'path', required: true,
      schema: name === 'nft_token_id' ? NFT_PARAM_SCHEMA : { type: 'string' },
      ...(kind === 'agents' && name === 'nft_token_id' ? { description: 'The NFT whose agent is addressed (or use the Host agent-{nft}.<host> at /v1/...).' } : {}),
    });
  }
  if (route.query) parameters.push(...queryParameters(route.query));
  if (route.signed) parameters.push({ $ref: '#/components/parameters/XSignature' }, { $ref: '#/components/parameters/XTimestamp' });
  if (route.idempotent) parameters.push({ $ref: '#/components/parameters/IdempotencyKey' });

  const op: Record<string, unknown> = {
    summary: route.summary,
    tags: route.tags ?? [kind === 'agents' ? 'agent' : 'api'],
    security: route.credential === 'agent' ? [{ agentCredential: [] }]
      : route.auth === 'required' ? [{ bearerAuth: [] }] : route.auth === 'optional' ? [{ bearerAuth: [] }, {}] : [],
    'x-rate-class': route.rateClass,
  };
  if (route.signed) op['x-signed'] = true;
  if (parameters.length) op.parameters = parameters;
  if (route.body) {
    op.requestBody = { required: true, content: { 'application/json': { schema: jsonSchemaOf(route.body) } } };
  }
  op.responses = responses(route, kind);
  return op;
}

function queryParameters(query: v.GenericSchema): unknown[] {
  const input = jsonSchemaOf(query, 'input');
  const output = jsonSchemaOf(query, 'output');
  const props = (output.properties ?? {}) as Record<string, SchemaObject>;
  const inProps = (input.properties ?? {}) as Record<string, SchemaObject>;
  const required = new Set((output.required as string[] | undefined) ?? []);
  return Object.entries(props).map(([name, schema]) => ({
    name, in: 'query', required: required.has(name),
    ...(PARAM_HELP[name] ? { description: PARAM_HELP[name] } : {}),
    schema: queryParamSchema(inProps[name] ?? schema, schema),
  }));
}

function responses(route: RouteDef, kind: 'api' | 'agents'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const status = String(route.successStatus ?? 200);
  const content: Record<string, unknown> = {};
  if (route.raw) {
    content['text/plain'] = { schema: { type: 'string' } };
  } else {
    content['application/json'] = { schema: route.response ? jsonSchemaOf(route.response) : { type: 'object' } };
  }
  if (route.sse) {
    content['text/event-stream'] = {
      schema: { type: 'string', description: 'Server-sent events: an opening `:` comment, then `data: <ChatChunk JSON>` per chunk and a last `data: <ChatFinal JSON>`.' },
      'x-sse-data': { oneOf: [{ $ref: '#/components/schemas/ChatChunk' }, { $ref: '#/components/schemas/ChatFinal' }] },
    };
  }
  out[status] = {
    description: route.sse ? 'The answer (JSON), or with `stream: true` a text/event-stream of chunks' : 'Success',
    headers: commonHeaders(),
    content,
  };
  for (const [st, codes] of byStatus(routeErrorCodes(route, kind))) {
    out[String(st)] = {
      description: codes.map((c) => `${c}: ${ERROR_CODES[c].message}`).join('; '),
      'x-error-codes': codes,
      headers: commonHeaders(st === 429 || st === 503 ? ['Retry-After'] : []),
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  out.default = { description: 'Any other error, in the same format', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  return out;
}

/**
 * The WS operation. `x-ws-messages` gives the JSON Schema of every client message by type, from
 * the same valibot schemas the WS server validates with (clients and the fuzzer read them).
 */
function websocketOperation(wsHandlers: Readonly<Record<string, WsMessageHandler>>): Record<string, unknown> {
  const messages: Record<string, SchemaObject> = {
    ping: { type: 'object', properties: { type: { const: 'ping' } }, required: ['type'] },
  };
  for (const [type, h] of Object.entries(wsHandlers).sort(([a], [b]) => a.localeCompare(b))) {
    messages[type] = { ...jsonSchemaOf(h.schema), 'x-rate-class': h.rateClass };
  }
  return {
    summary: 'WebSocket: deployment updates and chat streaming',
    description:
      'Upgrade with `?token=<access_token>` (401 at the upgrade when it is missing or bad). Client messages: ' +
      '`{type:"subscribe",channel:"deployment",nft_token_id}` -> `{type:"subscribed",deployment}` then DeploymentStatusFrame per transition; ' +
      '`{type:"chat_stream",message,nft_token_id?,conversation_id?,message_id?}` -> `{type:"subscribed",channel:"chat",conversation_id}` (once per conversation the socket starts following: not again for a later turn on it) then ChatChunkFrame...; ' +
      'a chat_stream resent with the same `message_id` (1-255 printable ASCII) is not run again: it gets the first turn\'s final frame (or follows it while it streams); ' +
      '`{type:"unsubscribe",channel,nft_token_id?|conversation_id?}`; `{type:"ping"}` -> `{type:"pong"}`. ' +
      'Errors: `{type:"error",request_type?,error:{code,message,details}}`; a socket closes with 4001 when its token expires, 4002 when its session is revoked (logout, refresh-token reuse), 4003 when its NFT changed hands (ownership_lost), 4008 for a slow reader; an `error` frame naming why comes first.',
    tags: ['websocket'],
    operationId: 'websocket',
    security: [],
    'x-rate-class': 'other',
    parameters: [{ name: 'token', in: 'query', required: true, schema: { type: 'string' }, description: 'An access token' }],
    'x-ws-messages': messages,
    responses: {
      '101': { description: 'Switching Protocols' },
      '401': { description: 'UNAUTHORIZED or TOKEN_EXPIRED', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    },
  };
}

function operationId(route: RouteDef, kind: 'api' | 'agents'): string {
  const words = route.path.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w.replace(/^[a-z]/, (c) => c.toUpperCase()));
  const id = route.method.toLowerCase() + words.join('');
  return kind === 'agents' ? 'agent' + id.replace(/^[a-z]/, (c) => c.toUpperCase()) : id;
}

function uniqueId(id: string, seen: Set<string>): string {
  let out = id;
  for (let i = 2; seen.has(out); i++) out = `${id}${i}`;
  seen.add(out);
  return out;
}
