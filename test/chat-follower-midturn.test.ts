import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor } from './helpers/server.js';
import { deployLocal } from './helpers/deploy.js';
import { openSseChat } from './helpers/streams.js';
import { openWs } from './helpers/ws.js';

// A turn streamed over SSE alone renders no WS frame (src/server/follower-check.ts): its "no
// followers" is asked again only once some socket subscribed (Publisher.subscriptions grew). This
// pins the other half of that bargain: a socket that starts following mid-turn is not left out.
test('a WS follower who subscribes in the middle of an SSE-only turn gets the chunks from then on', async () => {
  // 50 ms a token: the scripted reply (~30 words) streams for over a second.
  const server = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '50' });
  try {
    const nft = '560';
    const me = await deployLocal(server, nft);
    // The conversation exists before the streamed turn, so its id is known while it streams
    // (SSE chunk events do not carry it). Nobody follows it on a socket.
    const first = await server.request('POST', `/v1/agents/${nft}/chat`, { token: me.access_token, body: { message: 'open a conversation' } });
    assert.equal(first.status, 200, first.text);
    const cid: string = first.body.conversation_id;
    // Connected, not subscribed to anything yet.
    const sock = await openWs(server.url, me.access_token);

    const sse = await openSseChat(server.url, nft, me.access_token, { message: 'a long streamed answer please', conversation_id: cid });
    assert.equal(sse.status, 200);
    // The turn is under way with no follower: its first chunks were checked and not published.
    await waitFor(() => sse.events.filter((e) => e.done === false).length >= 3, 10_000, 5);
    assert.ok(!sse.events.some((e) => e.done === true), 'still streaming when the socket follows');

    sock.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, conversation_id: cid }));
    const sub = await sock.next((f) => f.type === 'subscribed' && f.channel === 'chat');
    assert.equal(sub.conversation_id, cid);
    const sseChunksAtSubscribe = sse.events.filter((e) => e.done === false).length;
    assert.ok(!sse.events.some((e) => e.done === true), 'the turn had not ended when the subscription was confirmed');

    const wsDone = await sock.next((f) => f.type === 'chat_chunk' && f.done === true, 15_000);
    await sse.ended;
    assert.equal(sse.error, undefined);
    const final = sse.events.at(-1);
    assert.equal(final.done, true);
    const sseChunks: string[] = sse.events.filter((e) => e.done === false).map((e) => e.content);
    assert.equal(sseChunks.join(''), final.response);

    // Nothing for this conversation before the subscription was confirmed.
    const subAt = sock.frames.indexOf(sub);
    assert.ok(!sock.frames.slice(0, subAt).some((f) => f.type === 'chat_chunk'), 'no chunk before subscribing');
    const wsChunks: string[] = sock.frames.slice(subAt).filter((f) => f.type === 'chat_chunk' && !f.done).map((f) => {
      assert.equal(f.conversation_id, cid);
      return f.content;
    });
    // The chunks after subscribing, in order: exactly the tail of what the SSE client got.
    assert.ok(wsChunks.length >= 1, `the follower got no chunk: the turn's "no followers" was never asked again (${sseChunks.length - sseChunksAtSubscribe} chunks were streamed after it subscribed)`);
    assert.ok(final.response.endsWith(wsChunks.join('')), 'the follower\'s chunks are a suffix of the reply');
    assert.deepEqual(wsChunks, sseChunks.slice(-wsChunks.length), 'the same chunks, in order, with none missing in between');
    assert.ok(sseChunks.length - wsChunks.length >= 3, 'the chunks sent before the follower came are not replayed');

    // And the turn's final frame, the same reply the SSE client got.
    assert.equal(wsDone.conversation_id, cid);
    assert.equal(wsDone.response, final.response);
    assert.equal(wsDone.tokens_used, final.tokens_used);
    assert.equal(wsDone.incomplete, false);
    sock.ws.close();
  } finally {
    await server.stop();
  }
});
