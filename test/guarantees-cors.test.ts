import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from './helpers/server.js';

let listed: TestServer;
let any: TestServer;
let none: TestServer;

before(async () => {
  listed = await startServer({ PANTHERS_CORS_ORIGINS: 'https://app.example, https://admin.example/' });
  any = await startServer({ PANTHERS_CORS_ORIGINS: '*' });
  none = await startServer({});
});

after(async () => {
  await listed?.stop();
  await any?.stop();
  await none?.stop();
});

const CORS_HEADERS = ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-expose-headers', 'access-control-max-age'];

function corsHeadersOf(h: Headers): string[] {
  return CORS_HEADERS.filter((n) => h.get(n) !== null);
}

test('an allowed origin is echoed with credentials, on successes and on errors', async () => {
  for (const [path, status] of [['/v1/health', 200], ['/v1/nothing-here', 404], ['/v1/auth/session', 401]] as const) {
    const r = await listed.request('GET', path, { headers: { origin: 'https://app.example' } });
    assert.equal(r.status, status);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
    assert.match(r.headers.get('vary') ?? '', /Origin/);
    assert.match(r.headers.get('access-control-expose-headers') ?? '', /X-RateLimit-Remaining/);
  }
  // A trailing slash in the configuration does not matter.
  const admin = await listed.request('GET', '/v1/health', { headers: { origin: 'https://admin.example' } });
  assert.equal(admin.headers.get('access-control-allow-origin'), 'https://admin.example');
});

test('preflight OPTIONS is answered 204 with methods, headers and max-age for an allowed origin', async () => {
  const r = await listed.request('OPTIONS', '/v1/deployments', {
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-signature, x-timestamp' },
  });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
  assert.match(r.headers.get('access-control-allow-methods') ?? '', /POST/);
  assert.match(r.headers.get('access-control-allow-methods') ?? '', /DELETE/);
  assert.match((r.headers.get('access-control-allow-headers') ?? '').toLowerCase(), /authorization.*x-signature/);
  assert.ok(Number(r.headers.get('access-control-max-age')) > 0);
  assert.equal(r.text, '');
});

test('a disallowed origin gets no CORS headers at all (request and preflight)', async () => {
  const r = await listed.request('GET', '/v1/health', { headers: { origin: 'https://evil.example' } });
  assert.equal(r.status, 200);
  assert.deepEqual(corsHeadersOf(r.headers), []);
  const p = await listed.request('OPTIONS', '/v1/deployments', { headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  assert.deepEqual(corsHeadersOf(p.headers), []);
  // Lookalikes are not allowed either.
  for (const o of ['https://app.example.evil.example', 'http://app.example', 'https://APP.example:443x']) {
    const x = await listed.request('GET', '/v1/health', { headers: { origin: o } });
    assert.deepEqual(corsHeadersOf(x.headers), [], o);
  }
});

test('`*` allows any origin but never with credentials', async () => {
  const r = await any.request('GET', '/v1/health', { headers: { origin: 'https://whoever.example' } });
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.equal(r.headers.get('access-control-allow-credentials'), null);
  const p = await any.request('OPTIONS', '/v1/auth/challenge', { headers: { origin: 'https://whoever.example', 'access-control-request-method': 'POST' } });
  assert.equal(p.status, 204);
  assert.equal(p.headers.get('access-control-allow-origin'), '*');
  assert.equal(p.headers.get('access-control-allow-credentials'), null);
});

test('no configured origins: no CORS headers for anyone', async () => {
  const r = await none.request('GET', '/v1/health', { headers: { origin: 'https://app.example' } });
  assert.deepEqual(corsHeadersOf(r.headers), []);
  const p = await none.request('OPTIONS', '/v1/health', { headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' } });
  assert.deepEqual(corsHeadersOf(p.headers), []);
});
