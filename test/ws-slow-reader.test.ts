import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, waitFor } from './helpers/server.js';
import { signIn } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';

test('a WS reader that stops reading is cut off (code 4008) and counted; the other readers are not slowed', async () => {
  const server = await startServer({ PANTHERS_WS_MAX_BUFFERED_BYTES: '65536' });
  try {
    const me = await signIn(server, { nft: '950' });
    await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '950', provider: 'local' } });
    await waitFor(async () => (await server.request('GET', '/v1/deployments/950', { token: me.access_token })).body.status === 'running');
    const first = await server.request('POST', '/v1/agents/950/chat', { token: me.access_token, body: { message: 'open a conversation' } });
    const cid = first.body.conversation_id;

    // Two followers of the same conversation: one reads, one stops reading at the TCP level.
    const good = await openWs(server.url, me.access_token);
    good.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: '950', conversation_id: cid }));
    await good.next((f) => f.type === 'subscribed');
    const slow = new WebSocket(server.url.replace('http', 'ws') + '/ws?token=' + me.access_token);
    await new Promise((r) => slow.once('open', r));
    const closed = new Promise<number>((r) => slow.once('close', (code) => r(code)));
    slow.send(JSON.stringify({ type: 'chat_stream', nft_token_id: '950', conversation_id: cid }));
    await new Promise((r) => slow.once('message', r));
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();

    // Turns whose chunks are published to both followers, until the slow one is cut off.
    const long = 'word '.repeat(50);
    const slowClosed = async () => /ws_slow_consumers_total\{action="closed"\} [1-9]/.test(await (await fetch(server.url + '/metrics')).text());
    let turns = 0;
    let cutOff = false;
    while (!cutOff && turns < 3000) {
      await server.request('POST', '/v1/agents/950/chat', { token: me.access_token, body: { message: long, conversation_id: cid } });
      turns++;
      if (turns % 20 === 0) cutOff = await slowClosed();
    }
    assert.ok(cutOff, `the slow reader was closed and counted (after ${turns} turns)`);
    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    // Its buffered frames are bounded, so the close reaches it (4008, or 1006 when uWS drops the rest).
    assert.ok([4008, 1006].includes(await closed));
    assert.equal(server.app.ws.connectionCount, 1, 'only the reading follower is left');
    // The reading follower got every turn, complete and in order.
    await good.next((f) => f.type === 'chat_chunk' && f.done && f.response.includes('word word'), 10_000);
    const done = good.frames.filter((f) => f.type === 'chat_chunk' && f.done);
    assert.equal(done.length, turns, 'every turn reached the reading follower');
    good.ws.close();
  } finally {
    await server.stop();
  }
});
