import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as v from 'valibot';
import WebSocket from 'ws';
import { startServer, type HttpResult, type TestServer } from './helpers/server.js';
import { sessionToken, addWsHandler, awayFromMinuteBoundary, WALLET_A, WALLET_B } from './helpers/guarantees.js';
import { RateLimiter } from '../src/guards/rate-limiter.js';
import { DEFAULT_RATE_LIMITS, parseRateLimits } from '../src/config.js';

let server: TestServer;
let plain: TestServer;

before(async () => {
  // Empty PANTHERS_RATE_LIMITS = the spec's defaults. The first server trusts 127.0.0.1 as a
  // proxy, so each test can speak as its own client IP through X-Forwarded-For.
  server = await startServer({ PANTHERS_RATE_LIMITS: '', PANTHERS_TRUSTED_PROXIES: '127.0.0.1' });
  plain = await startServer({ PANTHERS_RATE_LIMITS: 'auth=5,deployment=10,chat=30,other=60' });
});

after(async () => {
  await server?.stop();
  await plain?.stop();
});

const challenge = (s: TestServer, headers: Record<string, string>, token?: string) =>
  s.request('POST', '/v1/auth/challenge', { body: { wallet_address: WALLET_A, nft_token_id: '1' }, headers, token });

function assertRateHeaders(r: HttpResult, limit: number): void {
  assert.equal(r.headers.get('x-ratelimit-limit'), String(limit), `X-RateLimit-Limit on ${r.status}`);
  const remaining = Number(r.headers.get('x-ratelimit-remaining'));
  assert.ok(Number.isInteger(remaining) && remaining >= 0 && remaining <= limit, `X-RateLimit-Remaining ${remaining}`);
  const reset = Number(r.headers.get('x-ratelimit-reset'));
  const nowSec = Date.now() / 1000;
  assert.ok(reset > nowSec - 1 && reset <= nowSec + 61, `X-RateLimit-Reset ${reset} is unix seconds within the next minute`);
}

test('the 6th auth request in a minute is refused with 429 RATE_LIMITED, Retry-After and X-RateLimit-*', async () => {
  await awayFromMinuteBoundary();
  const ip = { 'x-forwarded-for': '203.0.113.10' };
  for (let i = 1; i <= 5; i++) {
    const r = await challenge(server, ip);
    assert.notEqual(r.status, 429, `request ${i} refused: ${r.text}`);
    assertRateHeaders(r, 5);
    assert.equal(r.headers.get('x-ratelimit-remaining'), String(5 - i));
  }
  const sixth = await challenge(server, ip);
  assert.equal(sixth.status, 429);
  assert.equal(sixth.body.error.code, 'RATE_LIMITED');
  assertRateHeaders(sixth, 5);
  assert.equal(sixth.headers.get('x-ratelimit-remaining'), '0');
  const retryAfter = Number(sixth.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  assert.equal(sixth.body.error.details.limit, 5);
  assert.equal(sixth.body.error.details.class, 'auth');
  // Another client IP (through the trusted proxy) has its own budget.
  const other = await challenge(server, { 'x-forwarded-for': '203.0.113.11' });
  assert.notEqual(other.status, 429);
  assert.equal(other.headers.get('x-ratelimit-remaining'), '4');
  // The refusal is counted in /metrics.
  const m = await server.request('GET', '/metrics', { headers: { 'x-forwarded-for': '203.0.113.99' } });
  assert.match(m.text, /rate_limited_total\{class="auth"\} [1-9]/);
});

test('every response carries X-RateLimit-*: 404, 401, preflight, health, the version document', async () => {
  const h = { 'x-forwarded-for': '203.0.113.20' };
  const answers = [
    await server.request('GET', '/v1/no-such-route', { headers: h }),
    await server.request('GET', '/v1/auth/session', { headers: h }),
    await server.request('GET', '/v1/auth/session', { headers: h, token: 'not-a-jwt' }),
    await server.request('GET', '/v1/health', { headers: h }),
    await server.request('GET', '/v1', { headers: h }),
    await server.request('OPTIONS', '/v1/health', { headers: { ...h, origin: 'https://x.example' } }),
  ];
  assert.deepEqual(answers.map((r) => r.status), [404, 401, 401, 200, 200, 204]);
  for (const r of answers) assertRateHeaders(r, 60);
  // Failed authentication counts (by IP): 5 counted requests so far, the preflight was not.
  assert.equal(answers[4]!.headers.get('x-ratelimit-remaining'), '55');
  assert.equal(answers[5]!.headers.get('x-ratelimit-remaining'), '55');
});

test('keyed by wallet with a valid token (across IPs), by client IP without one', async () => {
  await awayFromMinuteBoundary();
  const a = await sessionToken(server, WALLET_A);
  const b = await sessionToken(server, WALLET_B);
  // Wallet A from five different IPs: one budget.
  for (let i = 0; i < 5; i++) {
    const r = await challenge(server, { 'x-forwarded-for': `198.51.100.${i + 1}` }, a.token);
    assert.notEqual(r.status, 429);
    assert.equal(r.headers.get('x-ratelimit-remaining'), String(4 - i));
  }
  const refused = await challenge(server, { 'x-forwarded-for': '198.51.100.77' }, a.token);
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error.code, 'RATE_LIMITED');
  // Wallet B from the IP A just used, and the same IP without a token: untouched budgets.
  const rb = await challenge(server, { 'x-forwarded-for': '198.51.100.1' }, b.token);
  assert.equal(rb.headers.get('x-ratelimit-remaining'), '4');
  const anon = await challenge(server, { 'x-forwarded-for': '198.51.100.1' });
  assert.equal(anon.headers.get('x-ratelimit-remaining'), '4');
  // An invalid token on an auth-optional route is keyed by IP, not by a claimed wallet.
  const bad = await challenge(server, { 'x-forwarded-for': '198.51.100.1' }, a.token.slice(0, -4) + 'AAAA');
  assert.equal(bad.headers.get('x-ratelimit-remaining'), '3');
});

test('through a trusted proxy the client is the rightmost untrusted X-Forwarded-For entry (a forged left part is ignored)', async () => {
  await awayFromMinuteBoundary();
  // A client sending its own "X-Forwarded-For: <random>" through a proxy that appends.
  for (let i = 0; i < 5; i++) {
    const r = await challenge(server, { 'x-forwarded-for': `10.9.9.${i}, 203.0.113.50` });
    assert.notEqual(r.status, 429);
  }
  const r = await challenge(server, { 'x-forwarded-for': '10.9.9.99, 203.0.113.50, 127.0.0.1' });
  assert.equal(r.status, 429, 'same client behind rotating forged entries and a trusted hop');
});

test('X-Forwarded-For is ignored from an untrusted peer', async () => {
  await awayFromMinuteBoundary();
  // `plain` trusts no proxy: rotating X-Forwarded-For does not buy a new budget.
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await challenge(plain, { 'x-forwarded-for': `192.0.2.${i + 1}` });
    statuses.push(r.status);
  }
  assert.notEqual(statuses[4], 429);
  assert.equal(statuses[5], 429);
  // The audit row names the real peer, not the forged address.
  await new Promise((r) => setTimeout(r, 400));
  const ips = plain.app.ctx.db.prepare("SELECT DISTINCT client_ip FROM audit_log WHERE route = '/auth/challenge'").all() as { client_ip: string }[];
  assert.deepEqual(ips.map((r) => r.client_ip), ['127.0.0.1']);
});

test('WS messages count against their class (per wallet, shared with HTTP)', async () => {
  await awayFromMinuteBoundary();
  let handled = 0;
  addWsHandler(server, 'test_auth_class', {
    schema: v.object({ type: v.literal('test_auth_class') }),
    rateClass: 'auth',
    handle: (conn) => {
      handled++;
      conn.send({ type: 'test_ok' });
    },
  });
  const wallet = '0x' + 'c3'.repeat(20);
  const { token } = await sessionToken(server, wallet);
  // Two of the five spent over HTTP...
  for (let i = 0; i < 2; i++) await challenge(server, { 'x-forwarded-for': '198.51.100.200' }, token);
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws?token=${token}`);
  const frames: any[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  try {
    // ...so three WS messages pass and the fourth is refused.
    for (let i = 0; i < 4; i++) ws.send(JSON.stringify({ type: 'test_auth_class' }));
    const until = Date.now() + 5000;
    while (frames.length < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(handled, 3);
    const errors = frames.filter((f) => f.type === 'error');
    assert.equal(errors.length, 1);
    assert.equal(errors[0].error.code, 'RATE_LIMITED');
    assert.equal(errors[0].error.details.class, 'auth');
    // And the HTTP side now sees the wallet's auth budget spent.
    const r = await challenge(server, { 'x-forwarded-for': '198.51.100.201' }, token);
    assert.equal(r.status, 429);
  } finally {
    ws.close();
  }
});

test('PANTHERS_RATE_LIMITS parses overrides and `off`', () => {
  assert.deepEqual(parseRateLimits(''), DEFAULT_RATE_LIMITS);
  assert.deepEqual(parseRateLimits('auth=2,chat=7'), { ...DEFAULT_RATE_LIMITS, auth: 2, chat: 7 });
  assert.equal(parseRateLimits('off'), 'off');
  assert.throws(() => parseRateLimits('auth=five'), /PANTHERS_RATE_LIMITS/);
});

test('limits off: no headers, no refusals', async () => {
  const off = await startServer({ PANTHERS_RATE_LIMITS: 'off' });
  try {
    for (let i = 0; i < 7; i++) {
      const r = await challenge(off, {});
      assert.notEqual(r.status, 429);
      assert.equal(r.headers.get('x-ratelimit-limit'), null);
    }
  } finally {
    await off.stop();
  }
});

test('limiter memory stays bounded: 1e6 distinct keys keep at most maxKeys entries', () => {
  const maxKeys = 10_000;
  let now = 1_700_000_000_000;
  const limiter = new RateLimiter(DEFAULT_RATE_LIMITS, maxKeys, () => now);
  const heapBefore = process.memoryUsage().heapUsed;
  for (let i = 0; i < 1_000_000; i++) {
    limiter.take('other', `ip:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    if (i % 100_000 === 0) assert.ok(limiter.size <= maxKeys);
  }
  assert.ok(limiter.size <= maxKeys && limiter.size >= maxKeys / 2, `size ${limiter.size}`);
  const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
  assert.ok(grownMb < 50, `heap grew ${grownMb.toFixed(1)} MB`);
  // The newest keys are still counted exactly; the window roll-over frees everything.
  const d = limiter.take('other', `ip:10.15.66.63`); // key #999999
  assert.equal(d.remaining, 58);
  now += 60_000;
  limiter.take('other', 'ip:fresh');
  assert.equal(limiter.size, 1);
});

test('a spray of one-off keys does not reset the count of a client being limited', () => {
  const limiter = new RateLimiter(DEFAULT_RATE_LIMITS, 1000, () => 1_700_000_000_000);
  for (let i = 0; i < 5; i++) limiter.take('auth', 'ip:victim-of-its-own-limit');
  assert.equal(limiter.take('auth', 'ip:victim-of-its-own-limit').ok, false);
  for (let i = 0; i < 50_000; i++) limiter.take('auth', `ip:spray-${i}`);
  assert.ok(limiter.size <= 1000);
  assert.equal(limiter.take('auth', 'ip:victim-of-its-own-limit').ok, false);
});

test('fixed window: counts reset at the minute, Reset names it, Retry-After counts down to it', () => {
  let now = 1_700_000_000_000 - (1_700_000_000_000 % 60_000) + 50_000; // 10 s before a boundary
  const limiter = new RateLimiter(DEFAULT_RATE_LIMITS, 100, () => now);
  for (let i = 0; i < 5; i++) assert.ok(limiter.take('auth', 'k').ok);
  const refused = limiter.take('auth', 'k');
  assert.equal(refused.ok, false);
  assert.equal(refused.retryAfter, 10);
  assert.equal(refused.reset * 1000, now + 10_000);
  assert.equal(limiter.peek('auth', 'k').remaining, 0);
  now += 10_000;
  assert.ok(limiter.take('auth', 'k').ok);
});
