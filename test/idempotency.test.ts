import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, sleep, type TestServer } from './helpers/server.js';
import { signIn, type SignedIn } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';
import { openSseChat, storedMessages } from './helpers/streams.js';
import { deployLocal } from './helpers/deploy.js';

const deploy = deployLocal;

describe('idempotent writes: Idempotency-Key on POST /chat and POST /deployments, message_id on WS chat_stream', () => {
  let server: TestServer;
  let me: SignedIn;
  const nft = '1600';
  before(async () => {
    server = await startServer();
    me = await deploy(server, nft);
  });
  after(() => server.stop());

  const chat = (body: object, key?: string, token = me.access_token, n = nft) =>
    server.request('POST', `/v1/agents/${n}/chat`, { token, body, headers: key ? { 'idempotency-key': key } : {} });

  test('a retried POST /chat gets the first answer and stores nothing twice', async () => {
    const first = await chat({ message: 'once only' }, 'chat-key-1');
    assert.equal(first.status, 200, first.text);
    const again = await chat({ message: 'once only' }, 'chat-key-1');
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(storedMessages(server.dataDir, first.body.conversation_id).map((m) => m.role), ['user', 'assistant']);
    // Also as a stream: the whole first reply, then its final event.
    const s = await openSseChat(server.url, nft, me.access_token, { message: 'once only' }, { 'idempotency-key': 'chat-key-sse' });
    await s.ended;
    const r = await openSseChat(server.url, nft, me.access_token, { message: 'once only' }, { 'idempotency-key': 'chat-key-sse' });
    await r.ended;
    const text = (x: typeof s) => x.events.filter((e) => e.done === false).map((e) => e.content).join('');
    assert.equal(text(r), text(s));
    assert.deepEqual(r.events.at(-1), s.events.at(-1));
    assert.equal(storedMessages(server.dataDir, s.events.at(-1).conversation_id).length, 2);
  });

  test('the same key with a different request is a CONFLICT; keys are scoped per wallet; a malformed key is refused', async () => {
    await chat({ message: 'first' }, 'chat-key-2');
    const other = await chat({ message: 'second' }, 'chat-key-2');
    assert.equal(other.status, 409);
    assert.equal(other.body.error.code, 'CONFLICT');
    const someoneElse = await deploy(server, '1601');
    const theirs = await chat({ message: 'first' }, 'chat-key-2', someoneElse.access_token, '1601');
    assert.equal(theirs.status, 200);
    assert.equal(theirs.headers.get('idempotent-replayed'), null);
    const bad = await chat({ message: 'x' }, 'has spaces in it');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_FIELD');
  });

  test('a retry while the first is still streaming is told so (409 in_progress), not run twice', async () => {
    const slow = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '100' });
    try {
      const u = await deploy(slow, '1602');
      const s = await openSseChat(slow.url, '1602', u.access_token, { message: 'slow' }, { 'idempotency-key': 'k-slow' });
      const r = await slow.request('POST', '/v1/agents/1602/chat', { token: u.access_token, body: { message: 'slow', stream: true }, headers: { 'idempotency-key': 'k-slow' } });
      assert.equal(r.status, 409);
      assert.equal(r.body.error.details.state, 'in_progress');
      await s.ended;
    } finally {
      await slow.stop();
    }
  });

  test('a retried POST /deployments answers the first 202 (same deployment), not a 409', async () => {
    const u = await signIn(server, { nft: '1603' });
    const body = { nft_token_id: '1603', provider: 'local' };
    const headers = { 'idempotency-key': 'deploy-1603' };
    const a = await server.request('POST', '/v1/deployments', { token: u.access_token, body, headers });
    assert.equal(a.status, 202, a.text);
    const b = await server.request('POST', '/v1/deployments', { token: u.access_token, body, headers });
    assert.equal(b.status, 202, b.text);
    assert.equal(b.body.deployment_id, a.body.deployment_id);
    assert.equal(b.headers.get('idempotent-replayed'), 'true');
    const list = await server.request('GET', '/v1/deployments', { token: u.access_token });
    assert.equal(list.body.deployments.filter((d: any) => d.nft_token_id === '1603').length, 1);
    const noKey = await server.request('POST', '/v1/deployments', { token: u.access_token, body });
    assert.equal(noKey.status, 409);
  });

  test('a WS chat_stream resent with the same message_id gets the first final frame; stored once', async () => {
    const ws = await openWs(server.url, me.access_token);
    ws.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, message: 'over ws', message_id: 'ws-1' }));
    const final = await ws.next((f) => f.type === 'chat_chunk' && f.done === true);
    ws.ws.close();
    const ws2 = await openWs(server.url, me.access_token);
    ws2.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, message: 'over ws', message_id: 'ws-1' }));
    const replay = await ws2.next((f) => f.type === 'chat_chunk' && f.done === true);
    assert.deepEqual(replay, final);
    assert.equal(ws2.frames.filter((f) => f.type === 'chat_chunk' && !f.done).length, 0);
    ws2.ws.close();
    assert.deepEqual(storedMessages(server.dataDir, final.conversation_id).map((m) => m.content), ['over ws', final.response]);
  });

  test('keys survive a restart (persisted): the retry after a restart still gets the first answer', async () => {
    const first = await chat({ message: 'before restart' }, 'persist-1');
    await server.stop();
    server = await startServer({}, {}, server.dataDir);
    // The deployment comes back by itself (restart recovery); the session too.
    await waitFor(async () => (await server.request('GET', `/v1/deployments/${nft}`, { token: me.access_token })).body.status === 'running');
    const again = await chat({ message: 'before restart' }, 'persist-1');
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body, first.body);
  });
});

describe('a request aborted before the model starts leaves nothing (and its retry runs as a first attempt)', () => {
  test('timed out while queued behind another turn: nothing stored; the retry with the same key runs once', async () => {
    const server = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '100', PANTHERS_CHAT_CONCURRENCY: '1', PANTHERS_REQUEST_TIMEOUT_MS: '1500' });
    try {
      const me = await deploy(server, '1610');
      const open = await openSseChat(server.url, '1610', me.access_token, { message: 'open Y' });
      await open.ended;
      const y = { body: open.events.at(-1) };
      const cid = y.body.conversation_id;
      // A turn on another conversation holds the one slot for ~4 s.
      const busy = await openSseChat(server.url, '1610', me.access_token, { message: 'hold the slot' });
      await waitFor(() => busy.events.length > 0);
      const late = await server.request('POST', '/v1/agents/1610/chat', { token: me.access_token, body: { message: 'queued', conversation_id: cid }, headers: { 'idempotency-key': 'queued-1' } });
      assert.equal(late.status, 504);
      await busy.ended;
      await sleep(100);
      assert.equal(storedMessages(server.dataDir, cid).length, 2, 'the timed-out turn stored nothing');
      // Retried as a stream (a turn outlasts the request deadline here): the same key, the same turn.
      const retry = await waitFor(async () => {
        const r = await openSseChat(server.url, '1610', me.access_token, { message: 'queued', conversation_id: cid }, { 'idempotency-key': 'queued-1' });
        return r.status === 409 ? undefined : r;
      });
      await retry!.ended;
      const final = retry!.events.at(-1);
      assert.equal(final.done, true);
      assert.equal(final.incomplete, false);
      assert.deepEqual(storedMessages(server.dataDir, cid).map((m) => [m.role, m.content]), [
        ['user', 'open Y'], ['assistant', y.body.response], ['user', 'queued'], ['assistant', final.response],
      ]);
    } finally {
      await server.stop();
    }
  });
});
