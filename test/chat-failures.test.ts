import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startServer, waitFor, type TestServer } from './helpers/server.js';
import { signIn, type SignedIn } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';
import { openSseChat, storedMessages } from './helpers/streams.js';
import { deployLocal } from './helpers/deploy.js';
import type { ModelBackend } from '../src/models/model-backend.js';

const deploy = deployLocal;

/** The live agent actor's dependencies: where a test injects a failure (as SQLite's own tests inject faults). */
function agentDeps(server: TestServer, nft: string): any {
  const b = server.app.ctx.actors.behaviours<any>('agent');
  assert.ok(b.length > 0, `agent ${nft} is live`);
  return b[0].deps;
}

function sqliteError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('a failed turn always ends its stream with an error frame and a stored incomplete reply', () => {
  let server: TestServer;
  let me: SignedIn;
  let cid: string;
  const nft = '1500';
  before(async () => {
    // The SQLITE_BUSY case blocks the loop for the busy timeout: not an overload to shed.
    server = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '0', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '60000' });
    me = await deploy(server, nft);
    const first = await server.request('POST', `/v1/agents/${nft}/chat`, { token: me.access_token, body: { message: 'hello' } });
    assert.equal(first.status, 200);
    cid = first.body.conversation_id;
  });
  after(() => server.stop());

  const failing = [
    ['building the context throws SQLITE_BUSY', (d: any) => {
      const orig = d.repo.context;
      d.repo.context = () => { throw sqliteError('SQLITE_BUSY', 'database is locked'); };
      return () => { d.repo.context = orig; };
    }],
    ['building the character throws', (d: any) => {
      const orig = d.character;
      d.character = () => { throw new Error('character row unreadable'); };
      return () => { d.character = orig; };
    }],
    ['choosing the model throws', (d: any) => {
      const orig = d.model;
      d.model = () => { throw new TypeError('no backend'); };
      return () => { d.model = orig; };
    }],
  ] as const;

  for (const [name, inject] of failing) {
    test(`${name}: SSE and WS both get a final error frame; the reply is stored incomplete`, async () => {
      const restore = inject(agentDeps(server, nft));
      try {
        const before = storedMessages(server.dataDir, cid).length;
        const s = await openSseChat(server.url, nft, me.access_token, { message: 'fail please', conversation_id: cid });
        await s.ended;
        const last = s.events.at(-1);
        assert.equal(last.done, true);
        assert.equal(last.incomplete, true);
        assert.equal(last.error.code, 'INTERNAL_ERROR');
        const ws = await openWs(server.url, me.access_token);
        ws.ws.send(JSON.stringify({ type: 'chat_stream', conversation_id: cid, message: 'fail over ws' }));
        const final = await ws.next((f) => f.type === 'chat_chunk' && f.done === true && f.conversation_id === cid);
        assert.equal(final.error.code, 'INTERNAL_ERROR');
        ws.ws.close();
        await waitFor(() => storedMessages(server.dataDir, cid).length === before + 4);
        const added = storedMessages(server.dataDir, cid).slice(before);
        assert.deepEqual(added.map((m) => [m.role, m.content, m.incomplete]), [
          ['user', 'fail please', 0], ['assistant', '', 1], ['user', 'fail over ws', 0], ['assistant', '', 1],
        ]);
        // Nothing stays in flight.
        await waitFor(() => server.app.http.inflightCount === 0);
      } finally {
        restore();
      }
      // And the agent still answers.
      const ok = await server.request('POST', `/v1/agents/${nft}/chat`, { token: me.access_token, body: { message: 'again', conversation_id: cid } });
      assert.equal(ok.status, 200);
    });
  }

  test('the quota hook throwing after the reply is stored does not store it twice', async () => {
    const d = agentDeps(server, nft);
    const orig = d.quota;
    d.quota = { reserve: () => ({ settle() { throw sqliteError('SQLITE_BUSY', 'database is locked'); } }) };
    try {
      const before = storedMessages(server.dataDir, cid).length;
      const r = await server.request('POST', `/v1/agents/${nft}/chat`, { token: me.access_token, body: { message: 'count me', conversation_id: cid } });
      assert.equal(r.status, 200);
      const added = storedMessages(server.dataDir, cid).slice(before);
      assert.deepEqual(added.map((m) => [m.role, m.incomplete]), [['user', 0], ['assistant', 0]]);
    } finally {
      d.quota = orig;
    }
  });

  test('real SQLITE_BUSY (another process holds the write lock): the turn ends with SERVICE_UNAVAILABLE and stores nothing', async () => {
    const other = new Database(path.join(server.dataDir, 'panthers.db'));
    other.exec('BEGIN EXCLUSIVE');
    const before = storedMessages(server.dataDir, cid).length;
    let s: Awaited<ReturnType<typeof openSseChat>>;
    try {
      s = await openSseChat(server.url, nft, me.access_token, { message: 'while locked', conversation_id: cid });
      await s.ended;
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    const last = s!.events.at(-1);
    assert.equal(last.done, true);
    assert.equal(last.error.code, 'SERVICE_UNAVAILABLE');
    assert.equal(storedMessages(server.dataDir, cid).length, before);
  });

  test('real SQLITE_FULL on the reply write: the stream still ends with an error frame', async () => {
    const db = server.app.ctx.db;
    // The model runs a moment; the database fills up meanwhile.
    const d = agentDeps(server, nft);
    const origModel = d.model;
    d.model = (setting: string) => {
      const chosen = origModel(setting);
      return { model: chosen.model, backend: { ...chosen.backend, stream: async function* (req: any) {
        yield* chosen.backend.stream(req);
        const pages = db.pragma('page_count', { simple: true }) as number;
        db.pragma(`max_page_count = ${pages}`);
        db.exec('CREATE TABLE IF NOT EXISTS filler (x BLOB)');
        try { for (;;) db.prepare('INSERT INTO filler VALUES (randomblob(4096))').run(); } catch { /* full */ }
      } } };
    };
    try {
      const s = await openSseChat(server.url, nft, me.access_token, { message: 'fill it', conversation_id: cid });
      await s.ended;
      const last = s.events.at(-1);
      assert.equal(last?.done, true, JSON.stringify({ events: s.events.slice(-3), error: String(s.error) }));
      assert.ok(last.error, JSON.stringify(last));
    } finally {
      d.model = origModel;
      db.exec('DROP TABLE IF EXISTS filler');
      db.pragma('max_page_count = 1073741823');
    }
  });
});

describe('clear, info and health never wait behind a stream', () => {
  let server: TestServer;
  let me: SignedIn;
  const nft = '1501';
  before(async () => {
    // ~1 s per chunk: a reply takes about half a minute.
    server = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '1000' });
    me = await deploy(server, nft);
  });
  after(() => server.stop());

  test('during a streaming turn: /info, the health ping and /chat/clear answer at once; the stream ends with a final frame', async () => {
    const s = await openSseChat(server.url, nft, me.access_token, { message: 'a long one' });
    await waitFor(() => s.events.length > 0);
    const row = await waitFor(() => server.app.ctx.db.prepare('SELECT id FROM conversations WHERE nft_token_id = ?').get(nft) as { id: string } | undefined);
    const cid = row!.id;
    let t = performance.now();
    const info = await server.request('GET', `/v1/agents/${nft}/info`);
    assert.equal(info.status, 200);
    await server.app.ctx.actors.ask('agent', nft, { type: 'ping' });
    assert.ok(performance.now() - t < 5000, `info + ping took ${performance.now() - t} ms`);
    t = performance.now();
    const cleared = await server.request('POST', `/v1/agents/${nft}/chat/clear`, { token: me.access_token, body: { conversation_id: cid } });
    assert.equal(cleared.status, 200, cleared.text);
    assert.ok(performance.now() - t < 5000, `clear took ${performance.now() - t} ms`);
    await s.ended;
    const last = s.events.at(-1);
    assert.equal(last.done, true);
    assert.equal(last.incomplete, true);
    assert.equal(last.error.code, 'CONFLICT');
    // Cleared after the cut-short reply was stored: nothing lands after the clear.
    assert.equal(cleared.body.deleted, 2);
    assert.deepEqual(storedMessages(server.dataDir, cid), []);
  });
});

describe('stopping a deployment while its agent streams', () => {
  test('the stream ends with a final frame, the partial reply is stored incomplete, and the actor stops once idle', async () => {
    const server = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '500' });
    try {
      const me = await deploy(server, '1504');
      const s = await openSseChat(server.url, '1504', me.access_token, { message: 'long' });
      await waitFor(() => s.events.length > 1);
      const stop = await server.request('DELETE', '/v1/deployments/1504', { token: me.access_token });
      assert.ok(stop.status < 300, stop.text);
      await s.ended;
      const last = s.events.at(-1);
      assert.equal(last.done, true);
      assert.equal(last.incomplete, true);
      assert.equal(last.error.code, 'SERVICE_UNAVAILABLE');
      const sent = s.events.filter((e) => e.done === false).map((e) => e.content).join('');
      const stored = storedMessages(server.dataDir, last.conversation_id);
      assert.deepEqual(stored.map((m) => [m.role, m.incomplete]), [['user', 0], ['assistant', 1]]);
      assert.equal(stored[1]!.content, sent);
      await waitFor(() => { server.app.ctx.actors.sweep(); return !server.app.ctx.actors.isLive('agent', '1504'); });
    } finally {
      await server.stop();
    }
  });
});

describe('no exchange stays in flight past its deadline, streaming or not', () => {
  test('an SSE stream past PANTHERS_STREAM_TIMEOUT_MS ends with a TIMEOUT frame; its partial reply is stored incomplete', async () => {
    const server = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '200', PANTHERS_STREAM_TIMEOUT_MS: '700' });
    try {
      const me = await deploy(server, '1502');
      const s = await openSseChat(server.url, '1502', me.access_token, { message: 'slow' });
      await s.ended;
      const last = s.events.at(-1);
      assert.equal(last.done, true);
      assert.equal(last.error.code, 'TIMEOUT');
      const sent = s.events.filter((e) => e.done === false).map((e) => e.content).join('');
      const stored = storedMessages(server.dataDir, last.conversation_id);
      assert.deepEqual(stored.map((m) => [m.role, m.incomplete]), [['user', 0], ['assistant', 1]]);
      assert.equal(stored[1]!.content, sent);
      // A WS turn has the same deadline.
      const ws = await openWs(server.url, me.access_token);
      ws.ws.send(JSON.stringify({ type: 'chat_stream', message: 'slow ws' }));
      const final = await ws.next((f) => f.type === 'chat_chunk' && f.done === true, 5000);
      assert.equal(final.error.code, 'TIMEOUT');
      ws.ws.close();
      assert.equal(server.app.http.inflightCount, 0);
    } finally {
      await server.stop();
    }
  });

  test('a model that ignores the abort: the server ends the stream itself shortly after the deadline', async () => {
    const stuck: ModelBackend = {
      name: 'scripted', defaultModel: 'stuck',
      async *stream() {
        yield { type: 'delta', content: 'one ' } as never;
        await new Promise(() => undefined); // never again, whatever the signal says
      },
    } as unknown as ModelBackend;
    const server = await startServer({ PANTHERS_STREAM_TIMEOUT_MS: '500', PANTHERS_SHUTDOWN_GRACE_MS: '500' }, { models: { scripted: stuck } });
    try {
      const me = await deploy(server, '1503');
      const t = performance.now();
      const s = await openSseChat(server.url, '1503', me.access_token, { message: 'hang' });
      await s.ended;
      assert.ok(performance.now() - t < 5000);
      const last = s.events.at(-1);
      assert.equal(last.done, true);
      assert.equal(last.error.code, 'TIMEOUT');
      assert.equal(server.app.http.inflightCount, 0);
      // The turn itself let go too: the agent is idle, not held by the stuck backend.
      await waitFor(() => !server.app.ctx.actors.behaviours<any>('agent')[0].busy());
    } finally {
      await server.stop();
    }
  });
});
