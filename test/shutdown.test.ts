import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnCli, tempDir, request } from './helpers/server.js';
import { openWs } from './helpers/ws.js';
import { newEvmWallet } from './helpers/wallets.js';
import { deployLocalAt, openSseChat, signInProcess, storedMessages, type SseChat } from './helpers/streams.js';

describe('graceful shutdown (SIGTERM to a real server process)', () => {
  test('during 50 streams: every client gets a final frame, every socket a close frame, every partial reply is stored as incomplete', async () => {
    const dir = tempDir();
    // ~40 s per reply: every turn is mid-stream when the signal comes.
    const srv = await spawnCli(['serve'], {
      PORT: '0', PANTHERS_DATA_DIR: dir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_SCRIPTED_DELAY_MS: '1000', PANTHERS_CHAT_CONCURRENCY: '64',
      PANTHERS_SHUTDOWN_GRACE_MS: '5000',
    });
    const nft = '1400';
    const token = await signInProcess(srv.url, dir, nft, newEvmWallet());
    await deployLocalAt(srv.url, token, nft);

    const sse: SseChat[] = await Promise.all(Array.from({ length: 40 }, (_, i) => openSseChat(srv.url, nft, token, { message: `stream ${i}` })));
    for (const s of sse) assert.equal(s.status, 200);
    const ws = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const c = await openWs(srv.url, token);
      const closed = new Promise<number>((r) => c.ws.on('close', (code) => r(code)));
      c.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, message: `socket ${i}` }));
      return { ...c, closed };
    }));
    // Every stream has its first chunk: the model is running for all 50.
    const t0 = Date.now();
    while (sse.some((s) => !s.events.some((e) => e.done === false)) || ws.some((c) => !c.frames.some((f) => f.type === 'chat_chunk' && !f.done))) {
      assert.ok(Date.now() - t0 < 20_000, 'every stream should have started');
      await new Promise((r) => setTimeout(r, 20));
    }

    srv.child.kill('SIGTERM');
    assert.equal(await srv.exited, 0, srv.output().slice(-2000));
    await Promise.all(sse.map((s) => s.ended));

    for (const s of sse) {
      assert.equal(s.error, undefined, 'the stream ended cleanly, not by a dropped connection');
      const last = s.events.at(-1);
      assert.equal(last.done, true, JSON.stringify(s.events.slice(-2)));
      assert.equal(last.incomplete, true);
      assert.equal(last.error.code, 'SERVICE_UNAVAILABLE');
      const sent = s.events.filter((e) => e.done === false).map((e) => e.content).join('');
      assert.ok(sent.length > 0);
      const stored = storedMessages(dir, last.conversation_id);
      assert.deepEqual(stored.map((m) => [m.role, m.incomplete]), [['user', 0], ['assistant', 1]]);
      assert.equal(stored[1]!.content, sent, 'the stored partial reply is what the client received');
    }
    for (const c of ws) {
      assert.equal(await c.closed, 1001, 'a close frame (going away), not a dropped socket');
      const last = c.frames.find((f) => f.type === 'chat_chunk' && f.done === true);
      assert.ok(last, JSON.stringify(c.frames.slice(-2)));
      assert.equal(last.incomplete, true);
      const sent = c.frames.filter((f) => f.type === 'chat_chunk' && !f.done).map((f) => f.content).join('');
      const stored = storedMessages(dir, last.conversation_id);
      assert.deepEqual(stored.map((m) => [m.role, m.incomplete]), [['user', 0], ['assistant', 1]]);
      assert.equal(stored[1]!.content, sent);
    }
    // Stopped in order: the log says the database closed after the turns' writes.
    assert.match(srv.output(), /"msg":"stopped"/);
    assert.doesNotMatch(srv.output(), /database closed|storing a reply failed/);
  });

  test('requests arriving while stopping are answered 503, not dropped', async () => {
    const dir = tempDir();
    const srv = await spawnCli(['serve'], {
      PORT: '0', PANTHERS_DATA_DIR: dir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_SCRIPTED_DELAY_MS: '1000', PANTHERS_SHUTDOWN_GRACE_MS: '3000',
    });
    const nft = '1401';
    const token = await signInProcess(srv.url, dir, nft, newEvmWallet());
    await deployLocalAt(srv.url, token, nft);
    // A keep-alive connection opened before the signal.
    assert.equal((await request(srv.url, 'GET', '/v1/health')).status, 200);
    const s = await openSseChat(srv.url, nft, token, { message: 'slow' });
    while (!s.events.length) await new Promise((r) => setTimeout(r, 20));
    srv.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
    const during = await request(srv.url, 'GET', '/v1/health').catch((e) => ({ status: 0, error: e }));
    // Either the listen socket is already closed (connection refused) or the answer is a 503.
    assert.ok(during.status === 0 || during.status === 503, `got ${during.status}`);
    await srv.exited;
    await s.ended;
    assert.equal(s.events.at(-1).done, true);
  });
});
