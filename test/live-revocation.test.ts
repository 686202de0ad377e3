import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnCli, request, startServer, tempDir, waitFor, type ServerProcess } from './helpers/server.js';
import { newEvmWallet, signIn } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';
import { cliAssign, closed, openSse, signInOver, LAG_MS } from './helpers/sign-in-http.js';
import { ACCESS_TOKEN_TTL_SEC } from '../src/auth/tokens.js';

/**
 * A revoked session's live connections end at once: its WebSockets close (error frame first,
 * then a 4xxx code naming why) and its SSE streams end with a final error event. Through the
 * real server process, with real clients.
 */
let p: ServerProcess;
const dataDir = tempDir();
let n = 8000;

test.before(async () => {
  p = await spawnCli(['serve'], { PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS, PANTHERS_SCRIPTED_DELAY_MS: '150' });
});
test.after(async () => {
  p.child.kill('SIGTERM');
  await p.exited;
});

async function owned(): Promise<{ nft: string; wallet: ReturnType<typeof newEvmWallet> }> {
  const nft = String(n++);
  const wallet = newEvmWallet();
  await cliAssign(dataDir, nft, wallet.address);
  return { nft, wallet };
}

async function deploy(token: string, nft: string): Promise<void> {
  assert.equal((await request(p.url, 'POST', '/v1/deployments', { token, body: { nft_token_id: nft, provider: 'local' } })).status, 202);
  await waitFor(async () => (await request(p.url, 'GET', `/v1/deployments/${nft}`, { token })).body?.status === 'running');
}

test('logout closes the session\'s WebSockets (4002) and ends its SSE streams at once; another session\'s socket stays', async () => {
  const { nft, wallet } = await owned();
  const s = await signInOver(p.url, wallet, nft);
  const other = await signInOver(p.url, wallet, nft);
  await deploy(s.access_token, nft);
  const a = await openWs(p.url, s.access_token);
  const b = await openWs(p.url, s.access_token);
  const keep = await openWs(p.url, other.access_token);
  const sse = await openSse(p.url, `/v1/agents/${nft}/chat`, s.access_token, { message: 'a long story, please' });
  await waitFor(() => sse.events.length > 0);
  const ca = closed(a.ws);
  const cb = closed(b.ws);
  const t0 = performance.now();
  assert.equal((await request(p.url, 'POST', '/v1/auth/logout', { token: s.access_token })).status, 200);
  for (const c of [await ca, await cb]) {
    assert.equal(c.code, 4002);
    assert.equal(c.reason, 'logout');
    assert.ok(c.at - t0 < 5000, `closed at once, took ${c.at - t0} ms`);
  }
  assert.equal(a.frames.at(-1).error.code, 'UNAUTHORIZED');
  await sse.ended;
  assert.equal(sse.events.at(-1).error.code, 'UNAUTHORIZED');
  assert.equal(sse.events.at(-1).error.details.reason, 'logout');
  keep.ws.send(JSON.stringify({ type: 'ping' }));
  await keep.next((f) => f.type === 'pong');
  keep.ws.close();
});

test('logout also ends an OpenAI-compatible stream, in its dialect: an error chunk, then [DONE]', async () => {
  const { nft, wallet } = await owned();
  const s = await signInOver(p.url, wallet, nft);
  await deploy(s.access_token, nft);
  const sse = await openSse(p.url, `/v1/agents/${nft}/openai/v1/chat/completions`, s.access_token, {
    model: 'scripted', messages: [{ role: 'user', content: 'a long story, please' }],
  });
  await waitFor(() => sse.events.length > 1);
  assert.equal((await request(p.url, 'POST', '/v1/auth/logout', { token: s.access_token })).status, 200);
  await sse.ended;
  assert.equal(sse.events.at(-1), '[DONE]');
  assert.equal(sse.events.at(-2).error.code, 'unauthorized');
});

test('refresh-token reuse closes the session\'s sockets (4002, refresh_token_reuse)', async () => {
  const { nft, wallet } = await owned();
  const s = await signInOver(p.url, wallet, nft);
  const r1 = await request(p.url, 'POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
  const r2 = await request(p.url, 'POST', '/v1/auth/refresh', { body: { refresh_token: r1.body.refresh_token } });
  assert.equal(r2.status, 200);
  const ws = await openWs(p.url, r2.body.access_token);
  const c = closed(ws.ws);
  // The first token, two rotations old: someone kept a copy.
  assert.equal((await request(p.url, 'POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } })).status, 401);
  const got = await c;
  assert.equal(got.code, 4002);
  assert.equal(got.reason, 'refresh_token_reuse');
});

test('every WS message re-checks the session: after revocation by another path a message gets the error and the close', async () => {
  // Revoked through the session guard without the live index reaching this socket (a socket the
  // index does not know stands for one opened on another node): the next message is refused.
  const server = await startServer({ PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS });
  try {
    const s = await signIn(server, { nft: '1' });
    const ws = await openWs(server.url, s.access_token);
    ws.ws.send(JSON.stringify({ type: 'ping' }));
    await ws.next((f) => f.type === 'pong');
    const c = closed(ws.ws);
    // Unhook the socket from the index (reaching into it: no API does this on purpose).
    (server.app.ctx.live as unknown as { bySession: Map<string, unknown> }).bySession.delete(s.session_id);
    await server.app.ctx.actors.ask('session', s.session_id, { type: 'revoke', why: 'admin' });
    assert.equal(ws.ws.readyState, ws.ws.OPEN, 'not reached by the index');
    ws.ws.send(JSON.stringify({ type: 'ping' }));
    const got = await c;
    assert.equal(got.code, 4002);
    assert.equal(ws.frames.filter((f) => f.type === 'pong').length, 1, 'no answer after the revocation');
  } finally {
    await server.stop();
  }
});

test('access-token expiry ends an SSE stream and closes a WebSocket (4001)', async () => {
  // The server's clock runs TTL - 2 s behind: tokens it issues expire 2 s from now.
  const skew = (ACCESS_TOKEN_TTL_SEC - 2) * 1000;
  const server = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '300', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS }, { now: () => Date.now() - skew });
  try {
    const s = await signIn(server, { nft: '1' });
    assert.equal((await server.request('POST', '/v1/deployments', { token: s.access_token, body: { nft_token_id: '1', provider: 'local' } })).status, 202);
    await waitFor(async () => (await server.request('GET', '/v1/deployments/1', { token: s.access_token })).body?.status === 'running');
    const ws = await openWs(server.url, s.access_token);
    const c = closed(ws.ws);
    const sse = await openSse(server.url, '/v1/agents/1/chat', s.access_token, { message: 'a long, long story' });
    await sse.ended;
    assert.equal(sse.events.at(-1).error.code, 'TOKEN_EXPIRED');
    assert.equal((await c).code, 4001);
  } finally {
    await server.stop();
  }
});
