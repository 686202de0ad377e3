import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from './helpers/server.js';
import { ConfigError } from '../src/config.js';

let behindProxy: TestServer;
let noProxy: TestServer;
let dev: TestServer;

const PROD = { PANTHERS_ENV: 'production', PANTHERS_PUBLIC_URL: 'https://api.example.test' };

before(async () => {
  behindProxy = await startServer({ ...PROD, PANTHERS_TRUSTED_PROXIES: '127.0.0.1' });
  noProxy = await startServer({ ...PROD });
  dev = await startServer({});
});

after(async () => {
  await behindProxy?.stop();
  await noProxy?.stop();
  await dev?.stop();
});

function assertRefused(r: { status: number; body: any }): void {
  assert.equal(r.status, 403);
  assert.deepEqual(Object.keys(r.body), ['error']);
  assert.equal(r.body.error.code, 'FORBIDDEN');
  assert.match(r.body.error.message, /HTTPS is required/);
  assert.equal(r.body.error.details.https_required, true);
}

test('production refuses plain HTTP with the spec error format', async () => {
  assertRefused(await behindProxy.request('GET', '/v1/health'));
  assertRefused(await behindProxy.request('GET', '/v1/health', { headers: { 'x-forwarded-proto': 'http' } }));
  assertRefused(await behindProxy.request('POST', '/v1/auth/challenge', { body: {} }));
});

test('production accepts requests a trusted proxy marks X-Forwarded-Proto: https', async () => {
  const r = await behindProxy.request('GET', '/v1/health', { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.status, 'healthy');
});

test('X-Forwarded-Proto from an untrusted peer is not believed', async () => {
  assertRefused(await noProxy.request('GET', '/v1/health', { headers: { 'x-forwarded-proto': 'https' } }));
});

test('HSTS and the usual security headers in production; no HSTS in development', async () => {
  for (const r of [
    await behindProxy.request('GET', '/v1/health', { headers: { 'x-forwarded-proto': 'https' } }),
    await behindProxy.request('GET', '/v1/health'), // the refusal carries them too
  ]) {
    assert.match(r.headers.get('strict-transport-security') ?? '', /max-age=\d{7,}/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    assert.match(r.headers.get('cache-control') ?? '', /no-store/);
  }
  const d = await dev.request('GET', '/v1/health');
  assert.equal(d.headers.get('strict-transport-security'), null);
  assert.equal(d.headers.get('x-content-type-options'), 'nosniff');
});

test('production will not start with a plain-http public URL (endpoint URLs must be https)', async () => {
  await assert.rejects(startServer({ PANTHERS_ENV: 'production', PANTHERS_PUBLIC_URL: 'http://api.example.test' }), (e) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /PANTHERS_PUBLIC_URL must be an https:\/\/ URL/);
    return true;
  });
  await assert.rejects(startServer({ PANTHERS_ENV: 'production' }), ConfigError);
});

test('endpoint URLs derived from the public URL use https in production', () => {
  assert.match(behindProxy.app.ctx.config.publicUrl, /^https:\/\//);
});
