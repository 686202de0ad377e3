import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import * as v from 'valibot';
import Database from 'better-sqlite3';
import { startServer, spawnCli, tempDir, request, sleep, waitFor, ROOT, type TestServer } from './helpers/server.js';
import { route, json } from '../src/server/route.js';
import { ERROR_CODES } from '../src/errors.js';

/** Sends raw bytes and returns the raw HTTP answer (for what fetch cannot express). */
function rawHttp(port: number, data: string | Buffer, waitMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    s.write(data);
    setTimeout(() => {
      s.destroy();
      resolve(out);
    }, waitMs);
  });
}

describe('core HTTP plumbing', () => {
  let server: TestServer;
  let slowCalls = 0;
  let slowFinished = 0;
  before(async () => {
    server = await startServer({ PANTHERS_BODY_LIMIT: '1024' });
    // Test-only routes exercising validation, crashes and async replies.
    server.app.routes.api.add(route({
      method: 'POST', path: '/echo/:id', rateClass: 'other', auth: 'none', summary: 'test echo',
      body: v.object({ name: v.pipe(v.string(), v.minLength(2, 'must be at least 2 characters')), age: v.optional(v.number()), tags: v.optional(v.array(v.string())) }),
      query: v.object({ q: v.optional(v.string()) }),
      handler: (req) => json(201, { id: req.params.id, body: req.body, query: req.query }),
    }));
    server.app.routes.api.add(route({
      method: 'GET', path: '/boom', rateClass: 'other', auth: 'none', summary: 'test crash',
      handler: () => {
        throw new Error('secret internal detail at /srv/panthers/boom.ts:12');
      },
    }));
    server.app.routes.api.add(route({
      method: 'GET', path: '/slow', rateClass: 'other', auth: 'none', summary: 'test slow',
      handler: async () => {
        slowCalls++;
        await sleep(300);
        slowFinished++;
        return { ok: true };
      },
    }));
  });
  after(() => server.stop());

  test('every spec error code has one status in one table', (t) => {
    // The spec lives in shared/, beside the checkout (as CI lays it out).
    const specFile = [path.join(ROOT, '../shared/spec/api-specification.md'), '/work/shared/spec/api-specification.md'].find((f) => fs.existsSync(f));
    if (!specFile) return t.skip('shared/spec/api-specification.md is not beside this checkout');
    const spec = fs.readFileSync(specFile, 'utf8');
    const section = spec.slice(spec.indexOf('### Error Codes'), spec.indexOf('## Rate Limits'));
    const codes = [...section.matchAll(/^- ([A-Z_]+):/gm)].map((m) => m[1]!);
    assert.ok(codes.length >= 15);
    for (const c of codes) assert.ok(c in ERROR_CODES, `${c} missing from src/errors.ts`);
    assert.equal(ERROR_CODES.UNAUTHORIZED.status, 401);
    assert.equal(ERROR_CODES.FORBIDDEN.status, 403);
    assert.equal(ERROR_CODES.RATE_LIMITED.status, 429);
    assert.equal(ERROR_CODES.TIMEOUT.status, 504);
  });

  test('/v1 and the unprefixed alias answer the same; unknown path 404, wrong method 405', async () => {
    const a = await server.request('GET', '/v1/health');
    const b = await server.request('GET', '/health');
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(a.body.status, 'healthy');
    assert.equal(typeof a.body.uptime, 'number');
    assert.equal(a.body.deployments_active, 0);
    assert.equal(a.headers.get('deprecation'), null);
    assert.equal(b.headers.get('deprecation'), 'true');
    assert.equal(b.headers.get('link'), '</v1/health>; rel="successor-version"');
    const nf = await server.request('GET', '/v1/nothing/here');
    assert.equal(nf.status, 404);
    assert.deepEqual(Object.keys(nf.body.error).sort(), ['code', 'details', 'message']);
    assert.equal(nf.body.error.code, 'NOT_FOUND');
    const m = await server.request('DELETE', '/v1/health');
    assert.equal(m.status, 405);
    assert.equal(m.headers.get('allow'), 'GET');
  });

  test('validation: missing field, wrong type, format, non-object body, bad JSON', async () => {
    const ok = await server.request('POST', '/v1/echo/7?q=x', { body: { name: 'ab', tags: ['t'] } });
    assert.equal(ok.status, 201);
    assert.deepEqual(ok.body, { id: '7', body: { name: 'ab', tags: ['t'] }, query: { q: 'x' } });
    const missing = await server.request('POST', '/v1/echo/7', { body: {} });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.code, 'MISSING_FIELD');
    assert.equal(missing.body.error.details.field, 'name');
    const type = await server.request('POST', '/v1/echo/7', { body: { name: 'ab', age: 'old' } });
    assert.equal(type.body.error.code, 'INVALID_FIELD');
    assert.equal(type.body.error.details.field, 'age');
    const nested = await server.request('POST', '/v1/echo/7', { body: { name: 'ab', tags: ['ok', 3] } });
    assert.equal(nested.body.error.details.field, 'tags.1');
    const short = await server.request('POST', '/v1/echo/7', { body: { name: 'a' } });
    assert.equal(short.body.error.code, 'INVALID_FIELD');
    assert.match(short.body.error.details.reason, /at least 2/);
    const bad = await server.request('POST', '/v1/echo/7', { raw: '{"name": ', headers: { 'content-type': 'application/json' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_REQUEST');
    const arr = await server.request('POST', '/v1/echo/7', { raw: '[1,2]' });
    assert.equal(arr.body.error.code, 'INVALID_REQUEST');
    const empty = await server.request('POST', '/v1/echo/7', { raw: '' });
    assert.equal(empty.body.error.code, 'MISSING_FIELD');
  });

  test('body limit: 413 by Content-Length and by streamed size; the server keeps serving', async () => {
    const big = await server.request('POST', '/v1/echo/1', { body: { name: 'x'.repeat(2000) } });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'PAYLOAD_TOO_LARGE');
    // Chunked upload with no Content-Length that grows past the limit.
    const chunk = 'a'.repeat(600);
    const raw = await rawHttp(server.port,
      `POST /v1/echo/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${(600).toString(16)}\r\n${chunk}\r\n${(600).toString(16)}\r\n${chunk}\r\n0\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 413/);
    assert.equal((await server.request('GET', '/v1/health')).status, 200);
    // Refused before the body is read (unknown path, no token): still no crash.
    const nf = await server.request('POST', '/v1/nowhere', { body: { name: 'x'.repeat(5000) } });
    assert.equal(nf.status, 404);
    const unauth = await server.request('POST', '/v1/deployments', { body: { nft_token_id: 'x'.repeat(5000) } });
    assert.equal(unauth.status, 401);
    await sleep(50);
    assert.equal((await server.request('GET', '/v1/health')).status, 200);
  });

  test('an unexpected exception is logged and answered 500 without internals', async () => {
    const r = await server.request('GET', '/v1/boom');
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, 'INTERNAL_ERROR');
    assert.ok(!r.text.includes('secret internal detail'));
    assert.ok(!r.text.includes('.ts:'));
    assert.ok(server.logs.text.includes('secret internal detail'), 'the log has it');
  });

  test('X-Request-Id is always ours; a sane client id is logged beside it, a bad one ignored', async () => {
    const given = await server.request('GET', '/v1/health', { headers: { 'x-request-id': 'abc-123' } });
    const ours = given.headers.get('x-request-id')!;
    assert.match(ours, /^[0-9a-f-]{36}$/, 'a client cannot choose the id the server logs and audits requests by');
    const made = await server.request('GET', '/v1/health', { headers: { 'x-request-id': 'bad id with spaces <script>' } });
    assert.match(made.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
    const err = await server.request('GET', '/v1/nope');
    assert.ok(err.headers.get('x-request-id'));
    assert.ok(server.logs.lines.some((l) => l.includes(`"req_id":"${ours}"`) && l.includes('"client_req_id":"abc-123"') && l.includes('"status":200')));
    assert.ok(!server.logs.text.includes('<script>'));
  });

  test('a client that aborts mid-request never crashes the process', async () => {
    const before = slowFinished;
    for (let i = 0; i < 20; i++) {
      const ac = new AbortController();
      const p = fetch(`${server.url}/v1/slow`, { signal: ac.signal }).catch((e) => e);
      await sleep(5);
      ac.abort();
      await p;
    }
    // Half a body, then the socket goes away.
    await rawHttp(server.port, 'POST /v1/echo/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"name":', 100);
    await sleep(400);
    assert.ok(slowFinished > before, 'handlers finished after their clients left');
    assert.equal((await server.request('GET', '/v1/health')).status, 200);
  });

  test('GET /metrics: process, http, actors and ws metrics in Prometheus text', async () => {
    const r = await fetch(`${server.url}/metrics`);
    const text = await r.text();
    assert.match(r.headers.get('content-type')!, /text\/plain/);
    for (const name of ['process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds', 'http_requests_total', 'http_request_duration_seconds_bucket', 'actors_live', 'ws_connections', 'deployments_active']) {
      assert.ok(text.includes(name), `${name} in /metrics`);
    }
    assert.match(text, /http_requests_total\{route="\/health",method="GET",status="200"\} \d+/);
  });

  test('graceful stop: an in-flight request finishes, new connections are refused', async () => {
    const s = await startServer();
    let finished = false;
    s.app.routes.api.add(route({
      method: 'GET', path: '/slow-stop', rateClass: 'other', auth: 'none', summary: 'test slow',
      handler: async () => {
        await sleep(300);
        finished = true;
        return { ok: true };
      },
    }));
    const inflight = s.request('GET', '/v1/slow-stop');
    await sleep(50);
    const stopping = s.stop();
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.ok(finished);
    await stopping;
    await assert.rejects(fetch(s.url + '/v1/health', { headers: { connection: 'close' } }));
  });

  test('health is unhealthy (503) when the database cannot be written (a write lock held past our busy timeout), not while another writer holds it briefly', async () => {
    const s = await startServer();
    const other = new Database(path.join(s.dataDir, 'panthers.db'));
    other.pragma('busy_timeout = 0');
    try {
      other.exec('BEGIN EXCLUSIVE');
      // A lock held for a moment (the audit writer's batch) is a file in use, not a broken one.
      assert.equal((await s.request('GET', '/v1/health')).status, 200);
      // Held past what our own writes would wait: unhealthy.
      // Meanwhile the audit writer thread cannot commit; the event loop must not wait for it.
      let slowest = 0;
      await waitFor(async () => {
        const t = performance.now();
        const status = (await s.request('GET', '/v1/health')).status;
        slowest = Math.max(slowest, performance.now() - t);
        return status === 503;
      }, 5000, 100);
      assert.ok(slowest < 1000, `a /health took ${Math.round(slowest)} ms while the database was locked`);
      const r = await s.request('GET', '/v1/health');
      assert.equal(r.status, 503);
      assert.equal(r.body.status, 'unhealthy');
      other.exec('ROLLBACK');
      // Probed at most once a second: healthy again at the next probe.
      await waitFor(async () => (await s.request('GET', '/v1/health')).status === 200, 3000, 100);
    } finally {
      other.close();
      await s.stop();
    }
  });
});

describe('process: start, configuration, shutdown', () => {
  test('a bad configuration value stops the start with a message naming it', async () => {
    const p = await spawnCli(['serve'], { PORT: 'eighty', PANTHERS_DATA_DIR: tempDir() }, /never/).catch((e: Error) => e);
    assert.ok(p instanceof Error);
    assert.match(p.message, /PORT must be a whole number/);
    const q = await spawnCli(['serve'], { PORT: '0', PANTHERS_OWNERSHIP: 'evm', PANTHERS_DATA_DIR: tempDir() }, /never/).catch((e: Error) => e);
    assert.match(String(q), /PANTHERS_EVM_RPC_URL is required/);
  });

  test('refuses to run on the slow uWS fallback', async () => {
    const p = await spawnCli(['serve'], { PORT: '0', UWS_USE_FALLBACK: '1', PANTHERS_DATA_DIR: tempDir() }, /never/).catch((e: Error) => e);
    assert.match(String(p), /slow JavaScript fallback/);
  });

  test('SIGTERM: in-flight requests finish, then the process exits 0 and SQLite is closed cleanly', async () => {
    const dir = tempDir();
    const srv = await spawnCli(['serve'], { PORT: '0', PANTHERS_DATA_DIR: dir, PANTHERS_RATE_LIMITS: 'off' });
    const health = await request(srv.url, 'GET', '/v1/health');
    assert.equal(health.status, 200);
    // Requests racing the signal get an answer (200, or 503 once draining), never a reset.
    const racing = Promise.all([request(srv.url, 'GET', '/v1/health'), request(srv.url, 'GET', '/v1/health')]);
    srv.child.kill('SIGTERM');
    for (const a of await racing.catch(() => [])) assert.ok([200, 503].includes(a.status));
    assert.equal(await srv.exited, 0);
    assert.match(srv.output(), /"msg":"stopped"/);
    assert.ok(!fs.existsSync(path.join(dir, 'panthers.db-wal')) || fs.statSync(path.join(dir, 'panthers.db-wal')).size === 0, 'WAL checkpointed on close');
    await assert.rejects(fetch(srv.url + '/v1/health'));
  });
});
