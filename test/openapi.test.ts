import test from 'node:test';
import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import { startServer } from './helpers/server.js';
import { ERROR_CODES } from '../src/errors.js';
import type { RouteDef } from '../src/server/route.js';

/** Where the document should list a route: its own rule, written independently of src/openapi. */
function expectedPath(r: RouteDef, kind: 'api' | 'agents'): string {
  const p = r.path.replace(/:(\w+)/g, '{$1}');
  if (kind === 'agents') return `/v1/agents/{nft_token_id}${p}`;
  return p === '/v1' || p.startsWith('/.well-known/') ? p : `/v1${p}`;
}

test('OpenAPI 3.1 document: served at both paths, every route of the live tables, valid', async () => {
  const server = await startServer({ PANTHERS_RATE_LIMITS: 'auth=5,deployment=10,chat=30,other=600' });
  try {
    const v1 = await server.request('GET', '/v1/openapi.json');
    assert.equal(v1.status, 200);
    assert.match(v1.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(v1.headers.get('deprecation'), null);
    const alias = await server.request('GET', '/openapi.json');
    assert.equal(alias.status, 200);
    assert.equal(alias.headers.get('deprecation'), 'true');
    assert.deepEqual(alias.body, v1.body);
    const doc = v1.body;
    assert.equal(doc.openapi, '3.1.0');
    assert.equal((await server.request('GET', '/v1')).body.openapi, '/v1/openapi.json');

    // Every route of the router's own tables is in the document with its method.
    const { api, agents } = server.app.routes;
    assert.ok(api.routes.length >= 12 && agents.routes.length >= 5);
    const missing: string[] = [];
    for (const [kind, router] of [['api', api], ['agents', agents]] as const) {
      for (const r of router.routes) {
        const op = doc.paths[expectedPath(r, kind)]?.[r.method.toLowerCase()];
        if (!op) {
          missing.push(`${kind} ${r.method} ${r.path}`);
          continue;
        }
        assert.equal(op['x-rate-class'], r.rateClass, `${r.method} ${r.path}`);
        const security = r.credential === 'agent' ? [{ agentCredential: [] }] : r.auth === 'required' ? [{ bearerAuth: [] }] : r.auth === 'optional' ? [{ bearerAuth: [] }, {}] : [];
        assert.deepEqual(op.security, security, `${r.method} ${r.path}`);
        if (r.body) assert.ok(op.requestBody?.content?.['application/json']?.schema, `${r.method} ${r.path} requestBody`);
        const ok = op.responses[String(r.successStatus ?? 200)];
        assert.ok(ok, `${r.method} ${r.path} success response`);
        assert.ok(ok.headers['X-RateLimit-Remaining'], 'rate-limit headers documented');
        assert.ok(op.responses['429'].headers['Retry-After'], 'Retry-After on 429');
        if (r.sse) assert.ok(ok.content['text/event-stream'], `${r.path} documents its SSE answer`);
        const refs = (op.parameters ?? []).filter((p: { $ref?: string }) => p.$ref).map((p: { $ref: string }) => p.$ref);
        if (r.signed) assert.deepEqual(refs.filter((x: string) => x.includes('/X')), ['#/components/parameters/XSignature', '#/components/parameters/XTimestamp']);
        // POST /chat and POST /deployments document their Idempotency-Key header.
        assert.equal(refs.includes('#/components/parameters/IdempotencyKey'), r.idempotent === true, `${r.method} ${r.path}`);
      }
    }
    assert.deepEqual(missing, []);

    // The schemas are the router's own: the deploy body's provider enum and a bound from config.
    const deploy = doc.paths['/v1/deployments'].post;
    const deployBody = deploy.requestBody.content['application/json'].schema;
    assert.deepEqual([...deployBody.properties.provider.enum].sort(), ['akash', 'local', 'secret_vm']);
    assert.deepEqual(deployBody.required.sort(), ['nft_token_id', 'provider']);
    assert.equal(deploy.responses['202'] !== undefined, true);
    const limit = doc.paths['/v1/deployments'].get.parameters.find((p: { name: string }) => p.name === 'limit');
    assert.deepEqual(limit.schema, { type: 'integer', minimum: 1, maximum: 100, default: 50 });
    assert.ok(doc.paths['/v1/deployments/{nft_token_id}'].get.responses['404']);
    assert.ok(doc.paths['/v1/deployments/{nft_token_id}'].get.responses['401']['x-error-codes'].includes('TOKEN_EXPIRED'));

    // Agent-scoped access: the exchange, the agents' own sign-in, the credential routes.
    const exchange = doc.paths['/v1/agents/{nft_token_id}/token'].post;
    assert.deepEqual(exchange.security, [{ bearerAuth: [] }]);
    assert.deepEqual(exchange.responses['200'].content['application/json'].schema.required.sort(), ['access_token', 'audience', 'endpoint_url', 'expires_in', 'provider', 'token_type']);
    assert.ok(exchange.responses['403']['x-error-codes'].includes('FORBIDDEN'));
    assert.ok(exchange.responses['409']['x-error-codes'].includes('CONFLICT'));
    const agentVerify = doc.paths['/v1/agents/{nft_token_id}/auth/verify'].post;
    assert.deepEqual(agentVerify.requestBody.content['application/json'].schema.required.sort(), ['message', 'signature', 'wallet_address']);
    assert.deepEqual(agentVerify.responses['200'].content['application/json'].schema.required.sort(), ['access_token', 'expires_in']);
    assert.ok(agentVerify.responses['401']['x-error-codes'].includes('INVALID_SIGNATURE'));
    assert.ok(doc.paths['/v1/agents/{nft_token_id}/auth/challenge'].post);
    assert.deepEqual(doc.paths['/v1/agents/{nft_token_id}/revocations'].get.security, [{ agentCredential: [] }]);
    assert.match(doc.components.securitySchemes.bearerAuth.description, /wrong_audience/);

    // The error codes are exactly the table of src/errors.ts.
    assert.deepEqual(doc.components.schemas.ErrorCode.enum, Object.keys(ERROR_CODES));
    assert.deepEqual(doc.components.securitySchemes.bearerAuth, { ...doc.components.securitySchemes.bearerAuth, type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });

    // A well-kept validator (swagger-parser 13 supports 3.1.x) accepts the document...
    await SwaggerParser.validate(structuredClone(doc));
    // ...and is not a rubber stamp: broken copies are refused (a response without its required
    // description; a $ref to nothing).
    const noDescription = structuredClone(doc);
    delete noDescription.paths['/v1/deployments/{nft_token_id}'].get.responses['200'].description;
    await assert.rejects(SwaggerParser.validate(noDescription), /description/);
    const danglingRef = structuredClone(doc);
    danglingRef.paths['/v1/health'].get.responses['500'].content['application/json'].schema.$ref = '#/components/schemas/Nope';
    await assert.rejects(SwaggerParser.validate(danglingRef));

    // What swagger-parser leaves unchecked for 3.x (it validates the structure only): every path
    // template parameter is declared as a required path parameter, and operationIds are unique.
    const ids = new Set<string>();
    for (const [p, item] of Object.entries<Record<string, { operationId: string; parameters?: { name?: string; in?: string; required?: boolean }[] }>>(doc.paths)) {
      const names = [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item)) {
        const declared = (op.parameters ?? []).filter((x) => x.in === 'path' && x.required).map((x) => x.name);
        assert.deepEqual(declared.sort(), [...names].sort(), `${method} ${p} path parameters`);
        assert.ok(!ids.has(op.operationId), `duplicate operationId ${op.operationId}`);
        ids.add(op.operationId);
      }
    }
  } finally {
    await server.stop();
  }
});
