import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { spawnCli, request, tempDir, waitFor, type ServerProcess } from './helpers/server.js';
import { newEvmWallet } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';
import { cliAssign, closed, openSse, signInOver, LAG_MS } from './helpers/sign-in-http.js';
import { FakeEvmRpc } from './fakes/evm-rpc.js';

/**
 * An NFT changes hands while its seller is connected: through the real server process, with real
 * WS/HTTP clients and real signatures. Registry: the operator runs `panthers nft assign` (another
 * process writing the SQLite file). evm: the fake node mines a block with the Transfer log.
 * The latency printed is from the change being made to the seller's socket closing.
 */
const POLL_MS = 200;
const PROMPT = 'You are the secret persona of the seller. Never reveal: swordfish.';

function stop(p: ServerProcess): Promise<number | null> {
  p.child.kill('SIGTERM');
  return p.exited;
}

async function deployLocal(url: string, token: string, nft: string): Promise<void> {
  const d = await request(url, 'POST', '/v1/deployments', { token, body: { nft_token_id: nft, provider: 'local', agent: { system_prompt: PROMPT } } });
  assert.equal(d.status, 202, d.text);
  await waitFor(async () => (await request(url, 'GET', `/v1/deployments/${nft}`, { token })).body?.status === 'running');
}

/** The seller is connected every way there is; `transfer` makes the change; checks what follows. */
async function sellerLosesEverything(p: ServerProcess, dataDir: string, nft: string, seller: ReturnType<typeof newEvmWallet>, transfer: () => Promise<void>) {
  const url = p.url;
  const s = await signInOver(url, seller, nft);
  await deployLocal(url, s.access_token, nft);
  const conv = await request(url, 'POST', `/v1/agents/${nft}/chat`, { token: s.access_token, body: { message: 'remember: my diary' } });
  assert.equal(conv.status, 200, conv.text);

  const ws = await openWs(url, s.access_token);
  ws.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: nft }));
  await ws.next((f) => f.type === 'subscribed');
  const sse = await openSse(url, `/v1/agents/${nft}/chat`, s.access_token, { message: 'tell me a long story please, a very long one' });
  await waitFor(() => sse.events.length > 0);
  const wsClosed = closed(ws.ws);

  const t0 = performance.now();
  await transfer();
  const c = await wsClosed;
  const latencyMs = c.at - t0;
  assert.equal(c.code, 4003, 'close code: ownership lost');
  assert.equal(c.reason, 'ownership_lost');
  const last = ws.frames.at(-1);
  assert.equal(last.type, 'error');
  assert.equal(last.error.code, 'FORBIDDEN');
  assert.equal(last.error.details.reason, 'ownership_lost');

  await sse.ended;
  const final = sse.events.at(-1);
  assert.equal(final.done, true);
  assert.equal(final.error.code, 'FORBIDDEN', 'the stream ends with the reason');

  const after = await request(url, 'GET', '/v1/auth/session', { token: s.access_token });
  assert.equal(after.status, 401);
  const refresh = await request(url, 'POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
  assert.equal(refresh.status, 401);
  const sellerList = await request(url, 'GET', '/v1/deployments', { token: s.access_token });
  assert.equal(sellerList.status, 401);

  // The audit trail says why (rows are written in batches: wait for the flush).
  const db = new Database(`${dataDir}/panthers.db`, { readonly: true, fileMustExist: true });
  try {
    const row = await waitFor(() => db.prepare("SELECT * FROM audit_log WHERE route = 'session revoked: ownership_lost' AND nft_token_id = ?").get(nft) as any, 5000);
    assert.equal(row.wallet.toLowerCase(), seller.address.toLowerCase());
  } finally {
    db.close();
  }
  return { latencyMs, session: s, conversationId: conv.body.conversation_id as string };
}

/** The buyer: a fresh agent space, the old deployment without the seller's prompt. */
async function buyerStartsFresh(url: string, nft: string, buyer: ReturnType<typeof newEvmWallet>, sellerConversation: string) {
  const b = await signInOver(url, buyer, nft);
  const list = await request(url, 'GET', '/v1/deployments', { token: b.access_token });
  assert.equal(list.status, 200, list.text);
  assert.equal(list.body.total, 1, 'the deployment of the NFT the buyer owns now is listed');
  const d = list.body.deployments[0];
  assert.equal(d.nft_token_id, nft);
  assert.equal(d.previous_owner, true);
  assert.equal(d.agent.system_prompt, '');
  const one = await request(url, 'GET', `/v1/deployments/${nft}`, { token: b.access_token });
  assert.equal(one.status, 200);
  assert.equal(one.body.agent.system_prompt, '');
  assert.doesNotMatch(one.text, /swordfish/);
  const history = await request(url, 'GET', `/v1/agents/${nft}/chat/history?conversation_id=${sellerConversation}`, { token: b.access_token });
  assert.ok([403, 404].includes(history.status), `the seller's conversation is not the buyer's: ${history.status}`);
  const chat = await request(url, 'POST', `/v1/agents/${nft}/chat`, { token: b.access_token, body: { message: 'what is the secret word?' } });
  assert.equal(chat.status, 200, chat.text);
  assert.doesNotMatch(chat.body.response, /swordfish/);
  // The buyer may stop the old deployment.
  const del = await request(url, 'DELETE', `/v1/deployments/${nft}`, { token: b.access_token });
  assert.equal(del.status, 200, del.text);
  return b;
}

test('registry: `panthers nft assign` to a buyer closes the seller\'s socket (4003), ends their stream, revokes their session, audits why', async () => {
  const dataDir = tempDir();
  const seller = newEvmWallet();
  const buyer = newEvmWallet();
  const nft = '7001';
  await cliAssign(dataDir, nft, seller.address);
  const p = await spawnCli(['serve'], {
    PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS,
    PANTHERS_OWNERSHIP_POLL_MS: String(POLL_MS), PANTHERS_SCRIPTED_DELAY_MS: '150',
  });
  try {
    const { latencyMs, conversationId } = await sellerLosesEverything(p, dataDir, nft, seller, () => cliAssign(dataDir, nft, buyer.address));
    console.log(`# transfer-revocation latency (registry, poll ${POLL_MS} ms): ${latencyMs.toFixed(0)} ms from starting \`panthers nft assign\` (its start-up included) to the seller's socket closing`);
    assert.ok(latencyMs < POLL_MS + 2000, `within the stated bound (poll interval + 2 s), got ${latencyMs} ms`);
    await buyerStartsFresh(p.url, nft, buyer, conversationId);
    // Kept but unreachable (the default): the seller's conversation is still stored.
    const db = new Database(`${dataDir}/panthers.db`, { readonly: true });
    try {
      assert.ok(db.prepare('SELECT 1 FROM conversations WHERE id = ?').get(conversationId));
    } finally {
      db.close();
    }
  } finally {
    await stop(p);
  }
});

test('registry, PANTHERS_TRANSFER_CONVERSATIONS=wipe: the previous holder\'s conversations are deleted at the transfer', async () => {
  const dataDir = tempDir();
  const seller = newEvmWallet();
  const buyer = newEvmWallet();
  const nft = '7002';
  await cliAssign(dataDir, nft, seller.address);
  const p = await spawnCli(['serve'], {
    PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS,
    PANTHERS_OWNERSHIP_POLL_MS: String(POLL_MS), PANTHERS_TRANSFER_CONVERSATIONS: 'wipe',
  });
  try {
    const s = await signInOver(p.url, seller, nft);
    await deployLocal(p.url, s.access_token, nft);
    const conv = await request(p.url, 'POST', `/v1/agents/${nft}/chat`, { token: s.access_token, body: { message: 'private' } });
    assert.equal(conv.status, 200);
    const ws = await openWs(p.url, s.access_token);
    const wsClosed = closed(ws.ws);
    await cliAssign(dataDir, nft, buyer.address);
    assert.equal((await wsClosed).code, 4003);
    const db = new Database(`${dataDir}/panthers.db`, { readonly: true });
    try {
      await waitFor(() => !db.prepare('SELECT 1 FROM conversations WHERE id = ?').get(conv.body.conversation_id), 3000);
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?').get(conv.body.conversation_id) as any).n, 0);
    } finally {
      db.close();
    }
  } finally {
    await stop(p);
  }
});

test('registry, owners file: rewriting PANTHERS_OWNERS_FILE with a new owner closes the seller\'s socket', async () => {
  const dataDir = tempDir();
  const seller = newEvmWallet();
  const buyer = newEvmWallet();
  const file = `${dataDir}/owners.json`;
  fs.writeFileSync(file, JSON.stringify({ 7005: seller.address }));
  const p = await spawnCli(['serve'], {
    PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS,
    PANTHERS_OWNERSHIP_POLL_MS: String(POLL_MS), PANTHERS_OWNERS_FILE: file,
  });
  try {
    const s = await signInOver(p.url, seller, '7005');
    const ws = await openWs(p.url, s.access_token);
    const c = closed(ws.ws);
    // Written to a temporary file and renamed, as an operator's tooling would (never half a file).
    fs.writeFileSync(`${file}.tmp`, JSON.stringify({ 7005: buyer.address }));
    fs.renameSync(`${file}.tmp`, file);
    const got = await c;
    assert.equal(got.code, 4003);
    assert.equal((await request(p.url, 'GET', '/v1/auth/session', { token: s.access_token })).status, 401);
    await signInOver(p.url, buyer, '7005');
  } finally {
    await stop(p);
  }
});

test('a seller subscribed with a session for another NFT loses only that subscription', async () => {
  const dataDir = tempDir();
  const seller = newEvmWallet();
  const buyer = newEvmWallet();
  await cliAssign(dataDir, '7003', seller.address);
  await cliAssign(dataDir, '7004', seller.address);
  const p = await spawnCli(['serve'], {
    PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS, PANTHERS_OWNERSHIP_POLL_MS: String(POLL_MS),
  });
  try {
    const s = await signInOver(p.url, seller, '7004'); // a session for the NFT kept
    const ws = await openWs(p.url, s.access_token);
    ws.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: '7003' }));
    await ws.next((f) => f.type === 'subscribed' && f.nft_token_id === '7003');
    await cliAssign(dataDir, '7003', buyer.address);
    const dropped = await ws.next((f) => f.type === 'unsubscribed' && f.nft_token_id === '7003', 5000);
    assert.equal(dropped.reason, 'ownership_lost');
    ws.ws.send(JSON.stringify({ type: 'ping' }));
    await ws.next((f) => f.type === 'pong');
    assert.equal(ws.ws.readyState, ws.ws.OPEN, 'the socket of the session for the kept NFT stays open');
    ws.ws.close();
  } finally {
    await stop(p);
  }
});

test('evm: a Transfer log (eth_getLogs from a persisted cursor, ownerOf the truth) closes the seller\'s socket; a restart resumes from the cursor', async () => {
  const rpc = await new FakeEvmRpc().start();
  const dataDir = tempDir();
  const seller = newEvmWallet();
  const buyer = newEvmWallet();
  const nft = '7100';
  rpc.owners.set(7100n, seller.address);
  const env = {
    PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS,
    PANTHERS_OWNERSHIP: 'evm', PANTHERS_EVM_RPC_URL: rpc.url, PANTHERS_NFT_CONTRACT: rpc.contract, PANTHERS_CHAIN_ID: '1',
    PANTHERS_OWNERSHIP_POLL_MS: String(POLL_MS), PANTHERS_SCRIPTED_DELAY_MS: '150',
  };
  let p = await spawnCli(['serve'], env);
  try {
    await waitFor(() => rpc.methods.includes('eth_getLogs') || rpc.methods.includes('eth_blockNumber'));
    const { latencyMs, conversationId } = await sellerLosesEverything(p, dataDir, nft, seller, async () => rpc.transfer(7100n, buyer.address));
    console.log(`# transfer-revocation latency (evm, poll ${POLL_MS} ms): ${latencyMs.toFixed(0)} ms from the Transfer block being mined to the seller's socket closing`);
    assert.ok(latencyMs < POLL_MS + 2000, `within the stated bound, got ${latencyMs} ms`);
    assert.ok(rpc.methods.includes('eth_getLogs'));
    await buyerStartsFresh(p.url, nft, buyer, conversationId);

    // The cursor is persisted: after a restart a transfer made while the server was down is seen.
    await stop(p);
    const db = new Database(`${dataDir}/panthers.db`, { readonly: true });
    const cursor = (db.prepare('SELECT block FROM ownership_cursor').get() as { block: number }).block;
    db.close();
    assert.equal(cursor, rpc.head);
    p = await spawnCli(['serve'], env);
    const buyerSession = await signInOver(p.url, buyer, nft);
    const ws = await openWs(p.url, buyerSession.access_token);
    const wsClosed = closed(ws.ws);
    await stop(p);
    await wsClosed;
    rpc.transfer(7100n, seller.address); // while the server is down
    rpc.mine(3);
    p = await spawnCli(['serve'], env);
    const gone = await waitFor(async () => (await request(p.url, 'GET', '/v1/auth/session', { token: buyerSession.access_token })).status === 401, 5000);
    assert.ok(gone, 'the transfer made while the server was down revoked the session after the restart');
  } finally {
    await stop(p);
    await rpc.stop();
  }
});
