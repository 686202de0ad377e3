import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, waitFor, type TestServer } from './helpers/server.js';
import { LAG_LIMIT } from './helpers/process-provider.js';
import { signIn, assignNft, newEvmWallet, newCosmosWallet, type SignedIn } from './helpers/wallets.js';

/**
 * The embedded (local) agent's own sign-in, on the orchestrator process: POST /auth/challenge and
 * /auth/verify under /v1/agents/{nft}/ and by Host agent-{nft}.<host>, with real signatures.
 */
describe('embedded agent sign-in', { timeout: 120_000 }, () => {
  let server: TestServer;
  let owner: SignedIn;

  before(async () => {
    server = await startServer({ PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_LIMIT });
    owner = await signIn(server, { nft: '610' });
    const d = await server.request('POST', '/v1/deployments', { token: owner.access_token, body: { nft_token_id: '610', provider: 'local' } });
    assert.equal(d.status, 202, d.text);
    await waitFor(async () => (await server.request('GET', '/v1/deployments/610', { token: owner.access_token })).body.status === 'running');
  });
  after(() => server.stop());

  test('challenge names the agent, verify gives { access_token, expires_in } for that agent only', async () => {
    const wallet = newEvmWallet();
    assignNft(server, '610', wallet.address);
    const ch = await server.request('POST', '/v1/agents/610/auth/challenge', { body: { wallet_address: wallet.address } });
    assert.equal(ch.status, 200, ch.text);
    const host = `agent-610.localhost:${server.port}`;
    assert.ok(ch.body.message.startsWith(`${host} wants you to sign in with your Ethereum account:\n${wallet.address}\n`), ch.body.message);
    assert.match(ch.body.message, new RegExp(`\\nURI: http://${host}\\n`));
    const signature = await wallet.sign(ch.body.message);
    const vr = await server.request('POST', '/v1/agents/610/auth/verify', { body: { wallet_address: wallet.address, signature, message: ch.body.message } });
    assert.equal(vr.status, 200, vr.text);
    assert.deepEqual(Object.keys(vr.body).sort(), ['access_token', 'expires_in']);
    const aud = JSON.parse(Buffer.from(vr.body.access_token.split('.')[1], 'base64url').toString()).aud;
    assert.equal(aud, 'agent:610');

    // Accepted by this agent (path and Host addressing), refused by the orchestrator API.
    const chat = await server.request('POST', '/v1/agents/610/chat', { token: vr.body.access_token, body: { message: 'hi embedded' } });
    assert.equal(chat.status, 200, chat.text);
    const byHost = await getWithHost(server.port, host, `/v1/chat/history?conversation_id=${chat.body.conversation_id}`, vr.body.access_token);
    assert.equal(byHost.status, 200, byHost.text);
    assert.equal(JSON.parse(byHost.text).total, 2);
    for (const [m, p] of [['GET', '/v1/deployments/610'], ['POST', '/v1/auth/logout'], ['POST', '/v1/agents/610/token']] as const) {
      assert.equal((await server.request(m, p, { token: vr.body.access_token })).status, 401, `${m} ${p}`);
    }
    // The nonce is burned.
    const replay = await server.request('POST', '/v1/agents/610/auth/verify', { body: { wallet_address: wallet.address, signature, message: ch.body.message } });
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error.code, 'INVALID_SIGNATURE');
    assignNft(server, '610', owner.wallet);
  });

  test('a message for the orchestrator opens no agent session, and the reverse', async () => {
    const wallet = newEvmWallet();
    assignNft(server, '610', wallet.address);
    const orch = await server.request('POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address, nft_token_id: '610' } });
    const s1 = await wallet.sign(orch.body.message);
    const atAgent = await server.request('POST', '/v1/agents/610/auth/verify', { body: { wallet_address: wallet.address, signature: s1, message: orch.body.message } });
    assert.equal(atAgent.status, 401);
    assert.equal(atAgent.body.error.code, 'INVALID_SIGNATURE');
    assert.match(atAgent.body.error.details.reason, /another service/);

    const agent = await server.request('POST', '/v1/agents/610/auth/challenge', { body: { wallet_address: wallet.address } });
    const s2 = await wallet.sign(agent.body.message);
    const atOrch = await server.request('POST', '/v1/auth/verify', { body: { wallet_address: wallet.address, nft_token_id: '610', signature: s2, message: agent.body.message } });
    assert.equal(atOrch.status, 401);
    assert.equal(atOrch.body.error.code, 'INVALID_SIGNATURE');
    assignNft(server, '610', owner.wallet);
  });

  test('secret1 wallets (ADR-036), non-owners, agents not running, bad input', async () => {
    const keplr = newCosmosWallet();
    assignNft(server, '610', keplr.address);
    const ch = await server.request('POST', '/v1/agents/610/auth/challenge', { body: { wallet_address: keplr.address, nft_token_id: '610' } });
    assert.equal(ch.status, 200, ch.text);
    const signed = keplr.sign(ch.body.message);
    const vr = await server.request('POST', '/v1/agents/610/auth/verify', {
      body: { wallet_address: keplr.address, signature: signed.signature, public_key: signed.pub_key.value, message: ch.body.message },
    });
    assert.equal(vr.status, 200, vr.text);
    assignNft(server, '610', owner.wallet);

    const stranger = newEvmWallet();
    const forbidden = await server.request('POST', '/v1/agents/610/auth/challenge', { body: { wallet_address: stranger.address } });
    assert.equal(forbidden.status, 403);
    const notRunning = await server.request('POST', '/v1/agents/611/auth/challenge', { body: { wallet_address: stranger.address } });
    assert.equal(notRunning.status, 404);
    const otherNft = await server.request('POST', '/v1/agents/610/auth/challenge', { body: { wallet_address: owner.wallet, nft_token_id: '611' } });
    assert.equal(otherNft.status, 404);
    const bad = await server.request('POST', '/v1/agents/610/auth/verify', { body: { wallet_address: 'nope', signature: 'x', message: 'y' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_FIELD');
    const missing = await server.request('POST', '/v1/agents/610/auth/verify', { body: { wallet_address: owner.wallet } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.code, 'MISSING_FIELD');
  });

  test('exchanged agent tokens work at the embedded agent and end at once with the session', async () => {
    const me = await signIn(server, { nft: '610', wallet: { address: owner.wallet, privateKey: owner.privateKey, sign: (m) => sign(owner.privateKey, m) } });
    const t = await server.request('POST', '/v1/agents/610/token', { token: me.access_token });
    assert.equal(t.status, 200, t.text);
    assert.equal(t.body.endpoint_url, `http://agent-610.localhost:${server.port}`);
    assert.equal(t.body.provider, 'local');
    const chat = await server.request('POST', '/v1/agents/610/chat', { token: t.body.access_token, body: { message: 'scoped' } });
    assert.equal(chat.status, 200, chat.text);
    // Another agent's path refuses it.
    assert.equal((await server.request('POST', '/v1/agents/611/chat', { token: t.body.access_token, body: { message: 'x' } })).status, 401);
    await server.request('POST', '/v1/auth/logout', { token: me.access_token });
    const after = await server.request('POST', '/v1/agents/610/chat', { token: t.body.access_token, body: { message: 'scoped' } });
    assert.equal(after.status, 401);
    // Ownership lost: every agent token of the NFT is cut off at once here.
    const me2 = await signIn(server, { nft: '610', wallet: { address: owner.wallet, privateKey: owner.privateKey, sign: (m) => sign(owner.privateKey, m) } });
    const t2 = await server.request('POST', '/v1/agents/610/token', { token: me2.access_token });
    assert.equal(t2.status, 200, t2.text);
    server.app.ctx.agentAccess.ownershipLost('610');
    const cut = await server.request('POST', '/v1/agents/610/chat', { token: t2.body.access_token, body: { message: 'x' } });
    assert.equal(cut.status, 401);
    assert.equal(cut.body.error.details.reason, 'ownership_lost');
  });
});

/** fetch cannot set Host: node:http can, as a browser at agent-{nft}.<host> would send it. */
function getWithHost(port: number, host: string, path: string, token: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host, authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function sign(privateKey: string, message: string): Promise<string> {
  const { Wallet } = await import('ethers');
  return new Wallet(privateKey).signMessage(message);
}
