import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.js';
import { deployLocal } from './helpers/deploy.js';
import { openWs } from './helpers/ws.js';

// A turn's `subscribed` goes through the conversation's topic when the socket is its only follower
// (WsConn.sendAlong: it leaves with the first chunk, one write). What a client sees must not change:
// the acknowledgement first, once, to that socket alone; a second follower gets its own.
test('subscribed: first and once per follow, to the follower alone, whichever way it is sent', async () => {
  const server = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '5' });
  try {
    const nft = '561';
    const me = await deployLocal(server, nft);
    const a = await openWs(server.url, me.access_token);
    a.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, message: 'first turn over the socket' }));
    const done1 = await a.next((f) => f.type === 'chat_chunk' && f.done === true);
    const cid: string = done1.conversation_id;
    const acks = () => a.frames.filter((f) => f.type === 'subscribed');
    // The acknowledgement came before any chunk of its turn, exactly once.
    assert.equal(acks().length, 1);
    assert.equal(a.frames[0].type, 'subscribed', JSON.stringify(a.frames.slice(0, 3)));
    assert.equal(a.frames[0].conversation_id, cid);
    assert.equal(a.frames[0].nft_token_id, nft);

    // A second socket follows the same conversation: two followers now, so its ack goes straight
    // to it (through the topic it would reach the first socket too).
    const b = await openWs(server.url, me.access_token);
    b.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, conversation_id: cid }));
    const bAck = await b.next((f) => f.type === 'subscribed');
    assert.equal(bAck.conversation_id, cid);

    // The first socket's next turn on the conversation: no second ack for it, chunks to both.
    const before = a.frames.length;
    a.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, conversation_id: cid, message: 'second turn' }));
    const done2 = await a.next((f) => f.type === 'chat_chunk' && f.done === true && /second turn/.test(f.response));
    const bDone = await b.next((f) => f.type === 'chat_chunk' && f.done === true && /second turn/.test(f.response));
    assert.equal(bDone.response, done2.response);
    assert.equal(acks().length, 1, 'the first socket got no ack meant for the second, nor a second one of its own');
    assert.ok(a.frames.slice(before).every((f) => f.type === 'chat_chunk'), JSON.stringify(a.frames.slice(before).filter((f) => f.type !== 'chat_chunk')));
    assert.equal(b.frames.filter((f) => f.type === 'subscribed').length, 1);
    a.ws.close();
    b.ws.close();
  } finally {
    await server.stop();
  }
});
