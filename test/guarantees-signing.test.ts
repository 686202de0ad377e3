import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as v from 'valibot';
import { startServer, type TestServer } from './helpers/server.js';
import { sessionToken, WALLET_A } from './helpers/guarantees.js';
import { route } from '../src/server/route.js';
import { SqliteSessionStore } from '../src/auth/session-store.sqlite.js';
import { issueSigningKey, signRequest, HmacRequestVerifier, SIGNATURE_WINDOW_SEC } from '../src/guards/request-signing.js';

let server: TestServer;
let token: string;
let key: string;
let calls = 0;

before(async () => {
  server = await startServer({ PANTHERS_REQUIRE_SIGNED_REQUESTS: 'on' });
  // A test-only high-security route: the pipeline, not the handler, enforces the signature.
  server.app.routes.api.add(
    route({
      method: 'POST', path: '/test/signed-op', rateClass: 'deployment', auth: 'required', signed: true, summary: 'test',
      body: v.object({ n: v.number() }),
      handler: (req) => {
        calls++;
        return { ok: true, n: req.body.n };
      },
    }),
  );
  server.app.routes.api.add(
    route({
      method: 'DELETE', path: '/test/signed-op/:id', rateClass: 'deployment', auth: 'required', signed: true, summary: 'test',
      handler: (req) => ({ deleted: req.params.id }),
    }),
  );
  const s = await sessionToken(server, WALLET_A);
  token = s.token;
  key = await issueSigningKey(new SqliteSessionStore(server.app.ctx.db), s.sid);
});

after(() => server?.stop());

const nowSec = () => Math.floor(Date.now() / 1000);

function signed(body: string, opts: { ts?: number; sig?: string; path?: string; method?: string } = {}) {
  const ts = opts.ts ?? nowSec();
  const sig = opts.sig ?? signRequest(key, opts.method ?? 'POST', opts.path ?? '/v1/test/signed-op', body, ts);
  return { 'x-timestamp': String(ts), 'x-signature': sig, 'content-type': 'application/json' };
}

function assertInvalidSignature(r: { status: number; body: any; text: string }, why: RegExp): void {
  assert.equal(r.status, 401, r.text);
  assert.equal(r.body.error.code, 'INVALID_SIGNATURE');
  assert.match(r.body.error.message, why);
}

test('a correctly signed request passes, and the stored key is the session’s', async () => {
  const body = JSON.stringify({ n: 1 });
  const before = calls;
  const r = await server.request('POST', '/v1/test/signed-op', { raw: body, token, headers: signed(body) });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body, { ok: true, n: 1 });
  assert.equal(calls, before + 1);
  const row = server.app.ctx.db.prepare('SELECT signing_key FROM sessions WHERE signing_key = ?').get(key);
  assert.ok(row);
  assert.match(key, /^[0-9a-f]{64}$/);
});

test('the same signature used twice is refused as a replay', async () => {
  const body = JSON.stringify({ n: 2 });
  const headers = signed(body);
  const first = await server.request('POST', '/v1/test/signed-op', { raw: body, token, headers });
  assert.equal(first.status, 200);
  const again = await server.request('POST', '/v1/test/signed-op', { raw: body, token, headers });
  assertInvalidSignature(again, /already used/);
});

test('forged, stale, future, missing, body-tampered and path-tampered signatures are refused; the handler never runs', async () => {
  const body = JSON.stringify({ n: 3 });
  const before = calls;
  const otherKey = 'ab'.repeat(32);
  const cases: [string, Record<string, string>, string, RegExp][] = [
    ['forged with another key', { ...signed(body), 'x-signature': signRequest(otherKey, 'POST', '/v1/test/signed-op', body, nowSec()) }, body, /does not match/],
    ['stale timestamp', signed(body, { ts: nowSec() - SIGNATURE_WINDOW_SEC - 5 }), body, /seconds from the server time/],
    ['future timestamp', signed(body, { ts: nowSec() + SIGNATURE_WINDOW_SEC + 5 }), body, /seconds from the server time/],
    ['missing X-Signature', { 'x-timestamp': String(nowSec()), 'content-type': 'application/json' }, body, /requires X-Signature/],
    ['missing X-Timestamp', { 'x-signature': signRequest(key, 'POST', '/v1/test/signed-op', body, nowSec()), 'content-type': 'application/json' }, body, /requires X-Signature/],
    ['body tampered after signing', signed(body), JSON.stringify({ n: 4 }), /does not match/],
    ['signed for another path', signed(body, { path: '/v1/test/other' }), body, /does not match/],
    ['timestamp changed after signing', { ...signed(body), 'x-timestamp': String(nowSec() - 1) }, body, /does not match/],
    ['not hex', { ...signed(body), 'x-signature': 'zz'.repeat(32) }, body, /64 hex/],
  ];
  for (const [name, headers, sent] of cases) {
    const r = await server.request('POST', '/v1/test/signed-op', { raw: sent, token, headers });
    assert.equal(r.status, 401, `${name}: ${r.text}`);
    assert.equal(r.body.error.code, 'INVALID_SIGNATURE', name);
  }
  for (const [name, headers, sent, why] of cases) {
    const r = await server.request('POST', '/v1/test/signed-op', { raw: sent, token, headers });
    assert.match(r.body.error.message, why, name);
  }
  assert.equal(calls, before);
});

test('the unprefixed alias and a query string are part of what is signed; DELETE with no body signs the empty hash', async () => {
  const ts = nowSec();
  const path = '/test/signed-op/42?reason=done';
  const ok = await server.request('DELETE', path, { token, headers: { 'x-timestamp': String(ts), 'x-signature': signRequest(key, 'DELETE', path, '', ts) } });
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(ok.body, { deleted: '42' });
  // Signed without the query: refused.
  const ts2 = ts + 1;
  const bad = await server.request('DELETE', path, { token, headers: { 'x-timestamp': String(ts2), 'x-signature': signRequest(key, 'DELETE', '/test/signed-op/42', '', ts2) } });
  assertInvalidSignature(bad, /does not match/);
});

test('a session without a signing key is refused', async () => {
  const s = await sessionToken(server, WALLET_A);
  const body = '{"n":5}';
  const r = await server.request('POST', '/v1/test/signed-op', { raw: body, token: s.token, headers: signed(body) });
  assertInvalidSignature(r, /no request-signing key/);
});

test('with PANTHERS_REQUIRE_SIGNED_REQUESTS off, signed routes need no signature', async () => {
  const loose = await startServer();
  try {
    loose.app.routes.api.add(route({ method: 'POST', path: '/test/signed-op', rateClass: 'deployment', auth: 'required', signed: true, summary: 't', handler: () => ({ ok: true }) }));
    const s = await sessionToken(loose, WALLET_A);
    const r = await loose.request('POST', '/v1/test/signed-op', { body: {}, token: s.token });
    assert.equal(r.status, 200, r.text);
  } finally {
    await loose.stop();
  }
});

test('the shell recipe (openssl) computes the same X-Signature', () => {
  const body = '{"nft_token_id":"123","provider":"local"}';
  const ts = 1_760_000_000;
  const k = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
  // The recipe of docs/guarantees.md, run by a real shell.
  const script = `BODY_HASH=$(printf '%s' "$BODY" | openssl dgst -sha256 -r | cut -d' ' -f1)
printf '%s\\n%s\\n%s\\n%s' "$TS" POST /v1/deployments "$BODY_HASH" | openssl dgst -sha256 -mac HMAC -macopt hexkey:"$KEY" -r | cut -d' ' -f1`;
  const out = execFileSync('sh', ['-c', script], { env: { ...process.env, BODY: body, TS: String(ts), KEY: k } }).toString().trim();
  assert.equal(out, signRequest(k, 'POST', '/v1/deployments', body, ts));
});

test('the replay set is bounded and fails closed when full of live signatures', async () => {
  let now = 1_760_000_000_000;
  const db = server.app.ctx.db;
  // The set is the server's SQLite table: start this case from an empty one.
  db.prepare('DELETE FROM signature_replay').run();
  const verifier = new HmacRequestVerifier({ db, now: () => now, maxSeen: 3 });
  const sid = (db.prepare('SELECT id FROM sessions WHERE signing_key = ?').get(key) as { id: string }).id;
  const auth = { sub: WALLET_A, nft: '1', sid, exp: now / 1000 + 3600 };
  const call = (n: number) => {
    const body = Buffer.from(`{"n":${n}}`);
    const ts = Math.floor(now / 1000);
    const sig = signRequest(key, 'POST', '/v1/x', body, ts);
    const h: Record<string, string> = { 'x-signature': sig, 'x-timestamp': String(ts) };
    return verifier.verify({ method: 'POST', fullPath: '/v1/x', body, header: (name) => h[name], auth });
  };
  await call(1);
  await call(2);
  await call(3);
  await assert.rejects(() => call(4), /Too many signed requests/);
  assert.equal(verifier.size, 3);
  // Once their window has passed, the old entries are swept and signing works again.
  now += (SIGNATURE_WINDOW_SEC + 31) * 1000;
  await call(5);
  assert.equal(verifier.size, 1);
});
