import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE, openDatabase } from '../src/db/database.js';
import { AuditLog, verifyAuditChain } from '../src/guards/audit-log.js';
import { createLogger } from '../src/logger.js';
import WebSocket from 'ws';
import { startServer, waitFor, tempDir, sleep, CLI, type TestServer } from './helpers/server.js';
import type { AppOptions } from '../src/app.js';
import { signIn, newEvmWallet, assignNft, type SignedIn } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';
import { awayFromMinuteBoundary } from './helpers/guarantees.js';
import { signRequest } from '../src/guards/request-signing.js';
import type { AuditRow } from '../src/guards/audit-log.js';

/** The real server; shedding on event-loop lag (not what these tests are about) is lifted, since
 * the shared machine's load would otherwise shed their first requests. */
function startUnshed(env: Record<string, string> = {}, opts: AppOptions = {}, dataDir?: string): Promise<TestServer> {
  return startServer({ PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '10000', ...env }, opts, dataDir);
}


/**
 * OWASP API4 (unrestricted resource consumption): what one client can make the server hold or
 * write, through the real server with real WS/HTTP clients and real wallet signatures.
 */

type Upgrade = { ws: WebSocket; status: 101 } | { status: number; body: any; headers: http.IncomingHttpHeaders };

/** Opens /ws as a real client; a refused upgrade resolves with its status and JSON error body. */
function upgrade(server: TestServer, token: string | undefined, headers: Record<string, string> = {}): Promise<Upgrade> {
  const q = token === undefined ? '' : `?token=${encodeURIComponent(token)}`;
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws${q}`, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined, headers: res.headers }));
    });
    ws.once('error', (e) => {
      if (!/Unexpected server response/.test(String(e))) reject(e);
    });
  });
}

function closeAll(list: Upgrade[]): Promise<void[]> {
  return Promise.all(list.map((u) => ('ws' in u ? new Promise<void>((r) => { u.ws.once('close', () => r()); u.ws.close(); }) : Promise.resolve())));
}

function auditRows(server: TestServer): AuditRow[] {
  return server.app.ctx.db.prepare('SELECT * FROM audit_log ORDER BY id').all() as AuditRow[];
}

/** The rows of a stopped server (its handle is closed): read from the file. */
function storedRows(dataDir: string): AuditRow[] {
  const db = new Database(path.join(dataDir, DB_FILE), { readonly: true });
  try {
    return db.prepare('SELECT * FROM audit_log ORDER BY id').all() as AuditRow[];
  } finally {
    db.close();
  }
}

function verifyCli(dataDir: string) {
  return spawnSync(process.execPath, [CLI, 'audit', 'verify', '--data-dir', dataDir], { encoding: 'utf8', timeout: 20_000 });
}

/** Sends `total` requests, `width` at a time, with node:http (any method, even invented ones). */
async function flood(server: TestServer, total: number, width: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: width });
  let sent = 0;
  const one = () => new Promise<void>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, method, path, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
        resolve();
      });
    });
    req.on('error', reject);
    req.end();
  });
  await Promise.all(Array.from({ length: width }, async () => {
    while (sent < total) {
      sent++;
      await one();
    }
  }));
  agent.destroy();
  return statuses;
}

async function deployLocal(server: TestServer, me: SignedIn, nft: string): Promise<void> {
  const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: nft, provider: 'local' } });
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await server.request('GET', `/v1/deployments/${nft}`, { token: me.access_token })).body.status === 'running');
}

describe('concurrent WebSockets per wallet and per IP', () => {
  test('the N+1th socket of a wallet is refused with 429 naming the cap; closing one frees a slot; the IP cap holds across wallets', async () => {
    const server = await startUnshed({ PANTHERS_WS_MAX_PER_WALLET: '3', PANTHERS_WS_MAX_PER_IP: '5' });
    try {
      const a = await signIn(server, { nft: '1301' });
      const b = await signIn(server, { nft: '1302' });
      const open: Upgrade[] = [];
      for (let i = 0; i < 3; i++) open.push(await upgrade(server, a.access_token));
      assert.deepEqual(open.map((u) => u.status), [101, 101, 101]);
      const fourth = await upgrade(server, a.access_token);
      assert.equal(fourth.status, 429);
      assert.ok(!('ws' in fourth));
      if (!('ws' in fourth)) {
        assert.equal(fourth.body.error.code, 'RATE_LIMITED');
        assert.deepEqual(fourth.body.error.details, { reason: 'too_many_connections', scope: 'wallet', limit: 3 });
        assert.match(fourth.body.error.message, /PANTHERS_WS_MAX_PER_WALLET/);
      }
      // Closing one frees its slot (the count follows the close, not a timer).
      const first = open.shift()!;
      await closeAll([first]);
      await waitFor(() => server.app.ws.socketsOf(a.wallet) === 2);
      open.push(await upgrade(server, a.access_token));
      assert.equal(open.at(-1)!.status, 101);
      // Another wallet on the same address: 2 more fit under the IP cap of 5, the 3rd does not.
      open.push(await upgrade(server, b.access_token), await upgrade(server, b.access_token));
      assert.deepEqual(open.slice(-2).map((u) => u.status), [101, 101]);
      const overIp = await upgrade(server, b.access_token);
      assert.equal(overIp.status, 429);
      if (!('ws' in overIp)) assert.equal(overIp.body.error.details.scope, 'ip');
      assert.equal(server.app.ws.connectionCount, 5);
      const metrics = await server.request('GET', '/metrics');
      assert.match(metrics.text, /ws_upgrades_refused_total\{reason="wallet_cap"\} 1/);
      assert.match(metrics.text, /ws_upgrades_refused_total\{reason="ip_cap"\} 1/);
      await closeAll(open);
    } finally {
      await server.stop();
    }
  });

  test('upgrades racing in parallel cannot overshoot the cap', async () => {
    const server = await startUnshed({ PANTHERS_WS_MAX_PER_WALLET: '4' });
    try {
      const a = await signIn(server, { nft: '1303' });
      const all = await Promise.all(Array.from({ length: 12 }, () => upgrade(server, a.access_token)));
      assert.equal(all.filter((u) => u.status === 101).length, 4);
      assert.equal(all.filter((u) => u.status === 429).length, 8);
      assert.equal(server.app.ws.socketsOf(a.wallet), 4);
      await closeAll(all);
      await waitFor(() => server.app.ws.socketsOf(a.wallet) === 0);
    } finally {
      await server.stop();
    }
  });
});

describe('checks at the WebSocket upgrade', () => {
  test('production: a plain ws:// upgrade is refused 403 like plain HTTP; wss through the trusted proxy passes', async () => {
    const server = await startUnshed({ PANTHERS_ENV: 'production', PANTHERS_PUBLIC_URL: 'https://panthers.example', PANTHERS_TRUSTED_PROXIES: '127.0.0.1' });
    try {
      // Sign-in itself is HTTPS-only in production: it goes through the "proxy" headers too.
      const token = (await signInBehindProxy(server, '1310')).access_token;
      const plain = await upgrade(server, token);
      assert.equal(plain.status, 403);
      if (!('ws' in plain)) {
        assert.equal(plain.body.error.code, 'FORBIDDEN');
        assert.equal(plain.body.error.details.https_required, true);
      }
      const viaProxy = await upgrade(server, token, { 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.1' });
      assert.equal(viaProxy.status, 101, 'from the trusted proxy (127.0.0.1) with x-forwarded-proto: https');
      await closeAll([viaProxy]);
    } finally {
      await server.stop();
    }
  });

  test('failed tokens count per IP: past the limit even a valid token is refused 429 before it is checked', async () => {
    await awayFromMinuteBoundary(8000);
    const server = await startUnshed({ PANTHERS_RATE_LIMITS: 'auth=50,deployment=50,chat=50,other=5' });
    try {
      const me = await signIn(server, { nft: '1311' });
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await upgrade(server, `not-a-token-${i}`)).status);
      statuses.push((await upgrade(server, undefined)).status);
      assert.deepEqual(statuses, [401, 401, 401, 401, 401]);
      const blocked = await upgrade(server, me.access_token);
      assert.equal(blocked.status, 429);
      if (!('ws' in blocked)) {
        assert.equal(blocked.body.error.code, 'RATE_LIMITED');
        assert.ok(Number(blocked.headers['retry-after']) >= 1);
      }
    } finally {
      await server.stop();
    }
  });
});

async function signInBehindProxy(server: TestServer, nft: string): Promise<SignedIn> {
  const wallet = newEvmWallet();
  assignNft(server, nft, wallet.address);
  const h = { 'x-forwarded-proto': 'https' };
  const ch = await server.request('POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address, nft_token_id: nft }, headers: h });
  assert.equal(ch.status, 200, ch.text);
  const vr = await server.request('POST', '/v1/auth/verify', {
    body: { wallet_address: wallet.address, nft_token_id: nft, signature: await wallet.sign(ch.body.message), message: ch.body.message }, headers: h,
  });
  assert.equal(vr.status, 200, vr.text);
  return { wallet: wallet.address, privateKey: wallet.privateKey, access_token: vr.body.access_token, refresh_token: vr.body.refresh_token, session_id: vr.body.session_id };
}

describe('one chat message schema for HTTP and WS', () => {
  test('a message over PANTHERS_MAX_MESSAGE_CHARS gets the same error over WS chat_stream as over POST /chat; at the limit both pass', async () => {
    const server = await startUnshed({ PANTHERS_MAX_MESSAGE_CHARS: '100' });
    try {
      const me = await signIn(server, { nft: '1320' });
      await deployLocal(server, me, '1320');
      const long = 'x'.repeat(101);
      const overHttp = await server.request('POST', '/v1/agents/1320/chat', { token: me.access_token, body: { message: long } });
      assert.equal(overHttp.status, 400);
      const c = await openWs(server.url, me.access_token);
      c.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: '1320', message: long }));
      const frame = await c.next((f) => f.type === 'error');
      // Same code, message, field and reason; only `in` names the transport's part (body / message).
      assert.deepEqual({ ...frame.error, details: { ...frame.error.details, in: undefined } }, { ...overHttp.body.error, details: { ...overHttp.body.error.details, in: undefined } });
      // A 64 KB frame (the old WS limit) is now one schema's problem too, not a turn.
      c.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: '1320', message: 'y'.repeat(60_000) }));
      const big = await c.next((f) => f.type === 'error' && f !== frame);
      assert.equal(big.error.code, overHttp.body.error.code);
      const atLimit = 'z'.repeat(100);
      assert.equal((await server.request('POST', '/v1/agents/1320/chat', { token: me.access_token, body: { message: atLimit } })).status, 200);
      c.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: '1320', message: atLimit }));
      await c.next((f) => f.type === 'chat_chunk' && f.done === true);
      const turns = server.app.ctx.db.prepare("SELECT count(*) AS n FROM messages WHERE role = 'user' AND content = ?").get(long) as { n: number };
      assert.equal(turns.n, 0, 'the oversized message was never stored');
      c.ws.close();
    } finally {
      await server.stop();
    }
  });
});

describe('audit: rate limits before rows, aggregates, a cap, request ids, WS messages', () => {
  test('a flood of 1,500 OPTIONS and 1,000 rate-limited requests writes a handful of aggregate rows; the chain verifies', async () => {
    await awayFromMinuteBoundary(20_000);
    const server = await startUnshed({ PANTHERS_RATE_LIMITS: 'auth=5,deployment=10,chat=30,other=20', PANTHERS_CORS_ORIGINS: 'https://app.example' });
    try {
      const pre = await flood(server, 1500, 16, 'OPTIONS', '/v1/deployments', { origin: 'https://app.example', 'access-control-request-method': 'POST' });
      assert.equal(pre.get(204), 1500);
      const limited = await flood(server, 1020, 16, 'GET', '/v1/health');
      assert.equal(limited.get(200), 20);
      assert.equal(limited.get(429), 1000);
      await server.stop(); // flushes the open minute's aggregates
      const rows = storedRows(server.dataDir);
      const options = rows.filter((r) => r.method === 'OPTIONS');
      const refused = rows.filter((r) => r.status === 429);
      assert.equal(options.reduce((n, r) => n + (r.count ?? 1), 0), 1500);
      assert.equal(refused.reduce((n, r) => n + (r.count ?? 1), 0), 1000);
      assert.ok(options.length <= 2 && refused.length <= 2, `aggregates: ${options.length} + ${refused.length} rows`);
      assert.equal(rows.filter((r) => r.status === 200 && r.route === '/health').length, 20, 'admitted requests keep their row each');
      assert.ok(rows.length < 30, `${rows.length} rows for 2,520 requests`);
      for (const r of [...options, ...refused]) {
        assert.equal(r.client_ip, '127.0.0.1');
        assert.match(r.request_id, /^aggregate-/);
        assert.equal(r.ts % 60_000, 0, 'stamped with the minute it counts');
      }
      const v = verifyCli(server.dataDir);
      assert.equal(v.status, 0, v.stderr);
      const t = spawnSync(process.execPath, [CLI, 'audit', 'tail', '-n', '50', '--data-dir', server.dataDir], { encoding: 'utf8', timeout: 20_000 });
      const printed = t.stdout.trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(printed.filter((l) => l.method === 'OPTIONS').reduce((n, l) => n + l.count, 0), 1500, '`audit tail` shows the counts');
    } finally {
      await server.stop();
    }
  });

  test('a flood of OPTIONS leaves the audit log far within PANTHERS_AUDIT_MAX_ROWS; stored rows stop at the cap (oldest pruned, chain verifiable), with a metric and a degraded /health near it', async () => {
    const server = await startUnshed({ PANTHERS_AUDIT_MAX_ROWS: '100', PANTHERS_CORS_ORIGINS: 'https://app.example' });
    try {
      // 2,000 preflights: counted, not stored a row each, so nowhere near the cap.
      await flood(server, 2000, 16, 'OPTIONS', '/v1/deployments', { origin: 'https://app.example', 'access-control-request-method': 'POST' });
      await sleep(400);
      assert.ok(auditRows(server).length < 10, `${auditRows(server).length} rows after 2,000 OPTIONS`);
      assert.equal((await server.request('GET', '/v1/health')).body.degraded, undefined);
      // Rows that are stored (404s: answered, not refused) fill it up to the cap and no further.
      await flood(server, 400, 8, 'GET', '/v1/no-such-route');
      await waitFor(() => auditRows(server).length >= 100, 5000);
      const health = (await waitFor(async () => {
        const h = await server.request('GET', '/v1/health');
        return h.body.degraded ? h : undefined;
      }, 5000))!;
      assert.equal(health.status, 200);
      assert.equal(health.body.status, 'healthy', 'still serving');
      assert.match(health.body.warnings[0], /audit log holds \d+ of its 100-row cap/);
      const m = await server.request('GET', '/metrics');
      assert.match(m.text, /audit_max_rows 100/);
      assert.match(m.text, /audit_pruned_rows_total\{reason="cap"\} [1-9]\d*/);
      const rowsGauge = Number(/\naudit_rows (\d+)/.exec(m.text)![1]);
      assert.ok(rowsGauge <= 100, `audit_rows ${rowsGauge}`);
      await server.stop();
      const rows = storedRows(server.dataDir);
      assert.ok(rows.length <= 100, `${rows.length} rows`);
      assert.ok(rows[0]!.id > 300, 'the oldest rows went');
      const v = verifyCli(server.dataDir);
      assert.equal(v.status, 0, v.stderr);
    } finally {
      await server.stop();
    }
  });

  test('a client X-Request-Id is stored beside ours; invented methods are one metric label; WS messages get a row each', async () => {
    const server = await startUnshed();
    try {
      const me = await signIn(server, { nft: '1330' });
      await deployLocal(server, me, '1330');
      const r = await server.request('GET', '/v1/deployments/1330', { token: me.access_token, headers: { 'x-request-id': 'client-trace-42' } });
      const ours = r.headers.get('x-request-id')!;
      assert.notEqual(ours, 'client-trace-42');
      // uWS itself drops a connection whose method is not a standard one (FROBNICATE); methods it
      // passes that no route uses (TRACE, CONNECT...) reach us, and are one label: OTHER.
      await assert.rejects(flood(server, 1, 1, 'FROBNICATE', '/v1/health'), /socket hang up|ECONNRESET/);
      const weird = await flood(server, 5, 1, 'TRACE', '/v1/health');
      assert.equal(weird.get(405), 5);

      const c = await openWs(server.url, me.access_token);
      c.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: '1330' }));
      await c.next((f) => f.type === 'subscribed');
      c.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: '1330', message: 'audited turn' }));
      await c.next((f) => f.type === 'chat_chunk' && f.done === true);
      c.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: '9999' }));
      await c.next((f) => f.type === 'error');
      c.ws.send(JSON.stringify({ type: 'ping' }));
      await c.next((f) => f.type === 'pong');
      c.ws.close();

      const rows = (await waitFor(() => {
        const all = auditRows(server);
        return all.filter((x) => x.route.startsWith('/ws:')).length >= 3 ? all : undefined;
      }))!;
      const row = rows.find((x) => x.request_id === ours)!;
      assert.equal(row.client_request_id, 'client-trace-42');
      assert.equal(rows.filter((x) => x.request_id === 'client-trace-42').length, 0);
      const ws = rows.filter((x) => x.route.startsWith('/ws:')).map((x) => [x.route, x.status, x.wallet, x.nft_token_id]);
      assert.deepEqual(ws, [
        ['/ws:subscribe', 200, me.wallet, '1330'],
        ['/ws:chat_stream', 200, me.wallet, '1330'],
        ['/ws:subscribe', 403, me.wallet, '9999'],
      ]);
      const invented = rows.filter((x) => x.method === 'OTHER');
      assert.equal(invented.length, 5);
      const m = await server.request('GET', '/metrics');
      assert.ok(!/FROBNICATE|TRACE/.test(m.text), 'a method no route uses never becomes a label');
      assert.match(m.text, /http_requests_total\{route="unmatched",method="OTHER",status="405"\} 5/);
    } finally {
      await server.stop();
    }
  });
});

describe('rate-limited WS messages', () => {
  test('messages past the limit get an error frame and are counted in one aggregate row, not a row each', async () => {
    await awayFromMinuteBoundary(10_000);
    const server = await startUnshed({ PANTHERS_RATE_LIMITS: 'auth=50,deployment=50,chat=50,other=10' });
    try {
      const me = await signIn(server, { nft: '1350' });
      const c = await openWs(server.url, me.access_token); // the upgrade is 1 of the 10
      for (let i = 0; i < 200; i++) c.ws.send(i % 2 ? 'not json' : JSON.stringify({ type: 'unsubscribe', channel: 'deployment', nft_token_id: '1350' }));
      await waitFor(() => c.frames.length >= 200);
      const limited = c.frames.filter((f) => f.type === 'error' && f.error.code === 'RATE_LIMITED');
      assert.equal(limited.length, 191);
      c.ws.close();
      await server.stop();
      const ws = storedRows(server.dataDir).filter((r) => r.method === 'WS' && r.route !== '/ws');
      assert.equal(ws.filter((r) => r.count === null).length, 9, 'the 9 admitted messages have a row each');
      assert.equal(ws.filter((r) => r.status === 429).reduce((n, r) => n + (r.count ?? 0), 0), 191);
      assert.ok(ws.filter((r) => r.status === 429).length <= 4, 'aggregates (per route, per minute)');
    } finally {
      await server.stop();
    }
  });
});

describe('HMAC replay set', () => {
  test('a signed request replayed after a restart is still refused (the set is in SQLite)', async () => {
    const env = { PANTHERS_REQUIRE_SIGNED_REQUESTS: 'true' };
    let server = await startUnshed(env);
    const dataDir = server.dataDir;
    try {
      const me = await signIn(server, { nft: '1340' });
      assert.ok(me.signing_key);
      const body = JSON.stringify({ nft_token_id: '1340', provider: 'local' });
      const ts = Math.floor(Date.now() / 1000);
      const headers = { 'x-timestamp': String(ts), 'x-signature': signRequest(me.signing_key!, 'POST', '/v1/deployments', body, ts), 'content-type': 'application/json' };
      const first = await server.request('POST', '/v1/deployments', { raw: body, token: me.access_token, headers });
      assert.equal(first.status, 202, first.text);
      await server.stop();
      server = await startUnshed(env, {}, dataDir);
      const replay = await server.request('POST', '/v1/deployments', { raw: body, token: me.access_token, headers });
      assert.equal(replay.status, 401, replay.text);
      assert.equal(replay.body.error.code, 'INVALID_SIGNATURE');
      assert.match(replay.body.error.message, /already used/);
    } finally {
      await server.stop();
    }
  });
});

describe('aggregates stay bounded under an address spray', () => {
  test('past maxAggregates distinct addresses in a minute, the rest share one "*" row per kind; counts add up; the chain verifies', () => {
    const db = openDatabase(tempDir());
    let now = Date.UTC(2026, 11, 1, 12, 0, 5);
    const audit = new AuditLog({ db, log: createLogger({ level: 'silent' }), maxAggregates: 3, now: () => now });
    for (let i = 0; i < 1000; i++) {
      audit.refused({ ts: now, requestId: `r${i}`, wallet: undefined, nft: undefined, method: 'GET', route: '/health', status: 429, ip: `198.51.100.${i % 250}`, durationMs: 0.1 });
    }
    audit.flush();
    assert.equal((db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n, 0, 'the minute is still open');
    now += 60_000; // the minute is over: its aggregates are written
    audit.flush();
    const rows = db.prepare('SELECT client_ip, count FROM audit_log ORDER BY id').all() as { client_ip: string; count: number }[];
    assert.equal(rows.length, 4);
    assert.deepEqual(rows.map((r) => r.client_ip).sort(), ['*', '198.51.100.0', '198.51.100.1', '198.51.100.2']);
    assert.equal(rows.reduce((n, r) => n + r.count, 0), 1000);
    assert.deepEqual(verifyAuditChain(db), { ok: true, rows: 4 });
    db.close();
  });
});
