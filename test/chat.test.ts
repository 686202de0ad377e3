import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, tempDir, type TestServer } from './helpers/server.js';
import { signIn, type SignedIn } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';
import { startFakeOpenAI, type FakeLlm } from './fakes/openai-server.js';
import { startFakeOllama } from './fakes/ollama-server.js';

async function deployLocal(server: TestServer, nft: string, agent?: object): Promise<SignedIn> {
  const me = await signIn(server, { nft });
  const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: nft, provider: 'local', agent } });
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await server.request('GET', `/v1/deployments/${nft}`, { token: me.access_token })).body.status === 'running');
  return me;
}

/** Reads an SSE response as a real client does: the `data:` payloads in order. */
async function readSse(res: Response, onEvent?: (e: any, i: number) => void): Promise<any[]> {
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: any[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of block.split('\n')) {
        if (line.startsWith('data: ')) {
          const e = JSON.parse(line.slice(6));
          events.push(e);
          onEvent?.(e, events.length - 1);
        }
      }
    }
  }
  return events;
}

function chatFetch(server: TestServer, nft: string, token: string, body: object, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}/v1/agents/${nft}/chat`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body), signal,
  });
}

describe('chat with the scripted model', () => {
  let server: TestServer;
  let me: SignedIn;
  before(async () => {
    server = await startServer();
    me = await deployLocal(server, '500', { name: 'Ada', system_prompt: 'Be brief.', capabilities: ['chat', 'jokes'] });
  });
  after(() => server.stop());

  test('info reflects the deployment\'s agent settings', async () => {
    const info = await server.request('GET', '/v1/agents/500/info');
    assert.equal(info.body.name, 'Ada');
    assert.deepEqual(info.body.capabilities, ['chat', 'jokes']);
    assert.equal(info.body.model, 'scripted');
    assert.equal(info.body.status, 'running');
  });

  test('a turn, then history oldest first with tokens, then a second turn in the same conversation', async () => {
    const r1 = await server.request('POST', '/v1/agents/500/chat', { token: me.access_token, body: { message: 'Hello panther' } });
    assert.equal(r1.status, 200, r1.text);
    assert.match(r1.body.response, /Hello panther/);
    assert.match(r1.body.response, /offline scripted model/);
    assert.ok(r1.body.tokens_used > 0);
    assert.ok(!Number.isNaN(Date.parse(r1.body.timestamp)));
    const cid = r1.body.conversation_id;
    const r2 = await server.request('POST', '/v1/agents/500/chat', { token: me.access_token, body: { message: 'Second?', conversation_id: cid } });
    assert.equal(r2.body.conversation_id, cid);
    assert.match(r2.body.response, /turn 2/);
    const h = await server.request('GET', `/v1/agents/500/chat/history?conversation_id=${cid}`, { token: me.access_token });
    assert.equal(h.status, 200);
    assert.equal(h.body.total, 4);
    assert.deepEqual(h.body.messages.map((m: any) => m.role), ['user', 'assistant', 'user', 'assistant']);
    assert.equal(h.body.messages[0].content, 'Hello panther');
    assert.equal(h.body.messages[1].content, r1.body.response);
    assert.ok(h.body.messages.every((m: any) => m.tokens > 0 && m.incomplete === false && m.timestamp));
    const page = await server.request('GET', `/v1/agents/500/chat/history?conversation_id=${cid}&limit=2&offset=1`, { token: me.access_token });
    assert.deepEqual(page.body.messages.map((m: any) => m.role), ['assistant', 'user']);
    assert.deepEqual(page.body.pagination, { total: 4, limit: 2, offset: 1, has_more: true });
    const cleared = await server.request('POST', '/v1/agents/500/chat/clear', { token: me.access_token, body: { conversation_id: cid } });
    assert.equal(cleared.status, 200);
    assert.equal(cleared.body.deleted, 4);
    const after = await server.request('GET', `/v1/agents/500/chat/history?conversation_id=${cid}`, { token: me.access_token });
    assert.equal(after.body.total, 0);
  });

  test('SSE: one event per chunk, then the full response object with done: true', async () => {
    const res = await chatFetch(server, '500', me.access_token, { message: 'stream this please', stream: true });
    assert.equal(res.status, 200);
    const events = await readSse(res);
    const last = events.at(-1);
    assert.equal(last.done, true);
    const chunks = events.slice(0, -1);
    assert.ok(chunks.length > 5);
    assert.ok(chunks.every((e) => e.done === false && typeof e.content === 'string'));
    assert.equal(chunks.map((e) => e.content).join(''), last.response);
    assert.equal(typeof last.conversation_id, 'string');
    assert.ok(last.tokens_used > 0);
  });

  test('WS: chat_stream sends a turn and chunks arrive in order; an HTTP stream on a followed conversation reaches the socket too', async () => {
    const sock = await openWs(server.url, me.access_token);
    sock.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: '500', message: 'over the socket' }));
    const sub = await sock.next((f) => f.type === 'subscribed' && f.channel === 'chat');
    const done = await sock.next((f) => f.type === 'chat_chunk' && f.done === true);
    const chunks = sock.frames.filter((f) => f.type === 'chat_chunk' && !f.done);
    assert.equal(chunks.map((f) => f.content).join(''), done.response);
    assert.ok(chunks.every((f) => f.conversation_id === sub.conversation_id));
    assert.match(done.response, /over the socket/);

    const before = sock.frames.length;
    const res = await chatFetch(server, '500', me.access_token, { message: 'from http', stream: true, conversation_id: sub.conversation_id });
    const events = await readSse(res);
    const wsDone = await sock.next((f) => f.type === 'chat_chunk' && f.done === true && /from http/.test(f.response));
    const wsChunks = sock.frames.slice(before).filter((f) => f.type === 'chat_chunk' && !f.done).map((f) => f.content);
    assert.equal(wsChunks.join(''), events.at(-1).response);
    assert.equal(wsDone.response, events.at(-1).response);
    sock.ws.close();
  });

  test('failures: empty, oversized, unknown conversation, no token, token for another NFT, missing query field', async () => {
    const empty = await server.request('POST', '/v1/agents/500/chat', { token: me.access_token, body: { message: '   ' } });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.code, 'INVALID_FIELD');
    const missing = await server.request('POST', '/v1/agents/500/chat', { token: me.access_token, body: {} });
    assert.equal(missing.body.error.code, 'MISSING_FIELD');
    assert.equal(missing.body.error.details.field, 'message');
    const big = await server.request('POST', '/v1/agents/500/chat', { token: me.access_token, body: { message: 'x'.repeat(8001) } });
    assert.equal(big.status, 400);
    const unknown = await server.request('POST', '/v1/agents/500/chat', { token: me.access_token, body: { message: 'hi', conversation_id: '00000000-0000-0000-0000-000000000000' } });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'NOT_FOUND');
    const anon = await server.request('POST', '/v1/agents/500/chat', { body: { message: 'hi' } });
    assert.equal(anon.status, 401);
    const stranger = await signIn(server, { nft: '501' });
    const other = await server.request('POST', '/v1/agents/500/chat', { token: stranger.access_token, body: { message: 'hi' } });
    assert.equal(other.status, 403);
    assert.equal(other.body.error.code, 'FORBIDDEN');
    const hist = await server.request('GET', '/v1/agents/500/chat/history', { token: me.access_token });
    assert.equal(hist.status, 400);
    assert.equal(hist.body.error.details.field, 'conversation_id');
    // Another wallet cannot read someone's conversation even with the id.
    const mine = await server.request('POST', '/v1/agents/500/chat', { token: me.access_token, body: { message: 'secret stuff' } });
    const peek = await server.request('GET', `/v1/agents/500/chat/history?conversation_id=${mine.body.conversation_id}`, { token: stranger.access_token });
    assert.equal(peek.status, 403);
  });
});

describe('chat: aborts, restarts and real model backends', () => {
  test('an SSE client that aborts mid-stream stops the model; the reply is stored as incomplete', async () => {
    const server = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '30' });
    try {
      const me = await deployLocal(server, '510');
      const ac = new AbortController();
      const res = await chatFetch(server, '510', me.access_token, { message: 'a long answer please', stream: true }, ac.signal);
      let cid = '';
      await readSse(res, (_e, i) => {
        if (i === 2) ac.abort();
      }).catch((e) => assert.equal(e.name, 'AbortError'));
      // Find the conversation through the history of the latest turn stored.
      await waitFor(() => {
        const row = server.app.ctx.db.prepare(`SELECT conversation_id FROM messages WHERE role = 'assistant' ORDER BY id DESC LIMIT 1`).get() as any;
        cid = row?.conversation_id;
        return cid;
      });
      const h = await server.request('GET', `/v1/agents/510/chat/history?conversation_id=${cid}`, { token: me.access_token });
      const reply = h.body.messages.at(-1);
      assert.equal(reply.role, 'assistant');
      assert.equal(reply.incomplete, true);
      assert.ok(reply.content.length > 0 && !/offline scripted model/.test(reply.content), 'cut short');
    } finally {
      await server.stop();
    }
  });

  test('history survives a restart', async () => {
    const dir = tempDir();
    let server = await startServer({}, {}, dir);
    const me = await deployLocal(server, '520');
    const r = await server.request('POST', '/v1/agents/520/chat', { token: me.access_token, body: { message: 'remember me' } });
    await server.stop();
    server = await startServer({}, {}, dir);
    try {
      await waitFor(async () => (await server.request('GET', '/v1/agents/520/info')).status === 200);
      const h = await server.request('GET', `/v1/agents/520/chat/history?conversation_id=${r.body.conversation_id}`, { token: me.access_token });
      assert.equal(h.status, 200, h.text);
      assert.equal(h.body.messages[0].content, 'remember me');
      const r2 = await server.request('POST', '/v1/agents/520/chat', { token: me.access_token, body: { message: 'again', conversation_id: r.body.conversation_id } });
      assert.match(r2.body.response, /turn 2/);
    } finally {
      await server.stop();
    }
  });

  describe('openai-compatible and ollama backends over their wire formats', () => {
    let openai: FakeLlm;
    let ollama: FakeLlm;
    let server: TestServer;
    before(async () => {
      openai = await startFakeOpenAI({ apiKey: 'sk-test-SECRET-123' });
      ollama = await startFakeOllama();
      server = await startServer({
        PANTHERS_OPENAI_BASE_URL: openai.url, PANTHERS_OPENAI_API_KEY: 'sk-test-SECRET-123', PANTHERS_OLLAMA_URL: ollama.url, PANTHERS_MODEL_TIMEOUT_MS: '500',
      });
    });
    after(async () => {
      await server.stop();
      await openai.close();
      await ollama.close();
    });

    test('openai: stream, usage, the system prompt and history are sent', async () => {
      const me = await deployLocal(server, '530', { model: 'openai:gpt-test', system_prompt: 'You are a panther.' });
      const res = await chatFetch(server, '530', me.access_token, { message: 'roar', stream: true });
      const events = await readSse(res);
      const last = events.at(-1);
      assert.equal(last.done, true);
      assert.equal(events.slice(0, -1).map((e) => e.content).join(''), last.response);
      const sent = openai.requests.at(-1)!;
      assert.equal(sent.body.model, 'gpt-test');
      assert.equal(sent.body.stream, true);
      assert.equal(sent.body.messages[0].role, 'system');
      assert.equal(sent.body.messages[0].content, 'You are a panther.');
      assert.equal(sent.body.messages.at(-1).content, 'roar');
    });

    test('openai: a mid-stream failure ends the stream with an error and stores an incomplete reply; a hang is 504', async () => {
      const me = await deployLocal(server, '531', { model: 'openai:gpt-test' });
      openai.set({ mode: 'fail-mid-stream', failAfterChunks: 2 });
      const res = await chatFetch(server, '531', me.access_token, { message: 'break please', stream: true });
      const events = await readSse(res);
      const last = events.at(-1);
      assert.equal(last.done, true);
      assert.equal(last.error.code, 'SERVICE_UNAVAILABLE');
      assert.equal(last.incomplete, true);
      assert.ok(!JSON.stringify(events).includes('SECRET'), 'no API key in the stream');
      const h = await server.request('GET', `/v1/agents/531/chat/history?conversation_id=${last.conversation_id}`, { token: me.access_token });
      assert.equal(h.body.messages.at(-1).incomplete, true);

      openai.set({ mode: 'hang' });
      const hung = await server.request('POST', '/v1/agents/531/chat', { token: me.access_token, body: { message: 'hello?' } });
      assert.equal(hung.status, 504);
      assert.equal(hung.body.error.code, 'TIMEOUT');
      openai.set({ mode: 'error-status' });
      const down = await server.request('POST', '/v1/agents/531/chat', { token: me.access_token, body: { message: 'hello?' } });
      assert.equal(down.status, 503);
      assert.equal(down.body.error.code, 'SERVICE_UNAVAILABLE');
      openai.set({ mode: 'normal' });
      assert.ok(!server.logs.text.includes('sk-test-SECRET-123'), 'the API key never reaches the logs');
    });

    test('ollama: NDJSON stream and its token counts', async () => {
      const me = await deployLocal(server, '532', { model: 'ollama:llama3.2' });
      const r = await server.request('POST', '/v1/agents/532/chat', { token: me.access_token, body: { message: 'hi llama' } });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.response.length > 0);
      assert.ok(r.body.tokens_used > 0);
      assert.equal(ollama.requests.at(-1)!.body.model, 'llama3.2');
    });
  });
});

describe('chat guarantees', () => {
  test('a per-NFT daily token quota: past it chat is 429 QUOTA_EXCEEDED with the reset time', async () => {
    const server = await startServer({ PANTHERS_CHAT_DAILY_TOKEN_QUOTA: '60' });
    try {
      const me = await deployLocal(server, '540');
      let r = await server.request('POST', '/v1/agents/540/chat', { token: me.access_token, body: { message: 'one' } });
      for (let i = 0; i < 5 && r.status === 200; i++) {
        r = await server.request('POST', '/v1/agents/540/chat', { token: me.access_token, body: { message: 'again', conversation_id: r.body.conversation_id } });
      }
      assert.equal(r.status, 429, r.text);
      assert.equal(r.body.error.code, 'QUOTA_EXCEEDED');
      assert.ok(Date.parse(r.body.error.details.resets_at) > Date.now());
      assert.ok(Number(r.headers.get('retry-after')) > 0, 'Retry-After header');
      const sse = await chatFetch(server, '540', me.access_token, { message: 'stream?', stream: true });
      assert.equal(sse.status, 429, 'refused before the stream opens');
    } finally {
      await server.stop();
    }
  });
});
