import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from './helpers/server.js';
import { VERSION } from '../src/version.js';

let server: TestServer;

before(async () => {
  server = await startServer();
});

after(() => server?.stop());

test('unprefixed aliases answer with Deprecation and a Link to the /v1 path', async () => {
  for (const [path, status] of [['/health', 200], ['/metrics', 200], ['/auth/session', 401], ['/no-such-route', 404]] as const) {
    const r = await server.request('GET', path);
    assert.equal(r.status, status, path);
    assert.equal(r.headers.get('deprecation'), 'true', path);
    assert.equal(r.headers.get('link'), `</v1${path}>; rel="successor-version"`, path);
  }
  // The alias answers the same as /v1.
  const alias = await server.request('GET', '/health');
  const v1 = await server.request('GET', '/v1/health');
  assert.equal(alias.body.status, v1.body.status);
  assert.equal(alias.body.version, v1.body.version);
});

test('/v1 paths carry no Deprecation header', async () => {
  for (const path of ['/v1/health', '/v1/metrics', '/v1', '/v1/auth/session']) {
    const r = await server.request('GET', path);
    assert.equal(r.headers.get('deprecation'), null, path);
    assert.equal(r.headers.get('link'), null, path);
  }
});

test('GET /v1 reports the current API version', async () => {
  const r = await server.request('GET', '/v1');
  assert.equal(r.status, 200);
  assert.equal(r.body.api_version, 'v1');
  assert.equal(r.body.version, VERSION);
  assert.match(r.body.openapi, /^\/v1\/openapi\.json$/);
});
