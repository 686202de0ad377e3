import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, spawnCli, tempDir, request, type TestServer, type ServerProcess } from './helpers/server.js';
import { signIn, newEvmWallet, type SignedIn } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';

/**
 * `panthers agent` as a remote provider's container runs it: a real process, configured only by
 * the env vars the Dockerfile and the provider adapters pass.
 */
describe('standalone agent process', { timeout: 120_000 }, () => {
  let orchestrator: TestServer;
  let agent: ServerProcess;
  let owner: SignedIn;
  const ownWallet = newEvmWallet();
  before(async () => {
    orchestrator = await startServer();
    owner = await signIn(orchestrator, { nft: '700' });
    const dir = tempDir();
    const owners = path.join(dir, 'owners.json');
    fs.writeFileSync(owners, JSON.stringify({ '700': ownWallet.address }));
    agent = await spawnCli(['agent'], {
      PANTHERS_AGENT_NFT: '700',
      PORT: '0',
      HOST: '127.0.0.1',
      PANTHERS_DATA_DIR: dir,
      PANTHERS_OWNERS_FILE: owners,
      PANTHERS_AGENT_NAME: 'Standalone Panther',
      PANTHERS_AGENT_CAPABILITIES: 'chat,remote',
      PANTHERS_MODEL: 'scripted',
      PANTHERS_RATE_LIMITS: 'off',
    });
  });
  after(async () => {
    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0);
    await orchestrator.stop();
  });

  test('health and info from its env', async () => {
    const h = await request(agent.url, 'GET', '/health');
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'healthy');
    const info = await request(agent.url, 'GET', '/v1/info');
    assert.equal(info.body.name, 'Standalone Panther');
    assert.equal(info.body.nft_token_id, '700');
    assert.deepEqual(info.body.capabilities, ['chat', 'remote']);
  });

  test('refuses orchestrator session tokens (they are for the orchestrator only)', async () => {
    const r = await request(agent.url, 'POST', '/v1/chat', { token: owner.access_token, body: { message: 'hello from the orchestrator' } });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.body.error.code, 'UNAUTHORIZED');
    const none = await request(agent.url, 'POST', '/v1/chat', { body: { message: 'hi' } });
    assert.equal(none.status, 401);
  });

  test('chat_stream over its own /ws with its own token', async () => {
    const ch = await request(agent.url, 'POST', '/v1/auth/challenge', { body: { wallet_address: ownWallet.address } });
    const signature = await ownWallet.sign(ch.body.message);
    const vr = await request(agent.url, 'POST', '/v1/auth/verify', { body: { wallet_address: ownWallet.address, signature, message: ch.body.message } });
    const sock = await openWs(agent.url, vr.body.access_token);
    sock.ws.send(JSON.stringify({ type: 'chat_stream', message: 'over the agent socket' }));
    const done = await sock.next((f) => f.type === 'chat_chunk' && f.done === true);
    const text = sock.frames.filter((f) => f.type === 'chat_chunk' && !f.done).map((f) => f.content).join('');
    assert.equal(text, done.response);
    assert.match(done.response, /over the agent socket/);
    sock.ws.close();
  });

  test('accepting orchestrator tokens needs the orchestrator URL and a deployment credential (revocations): a config error otherwise', async () => {
    const dir = tempDir();
    await assert.rejects(
      spawnCli(['agent'], { PANTHERS_AGENT_NFT: '700', PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dir, PANTHERS_ORCHESTRATOR_JWKS_URL: `${orchestrator.url}/.well-known/jwks.json` }),
      /PANTHERS_AGENT_CREDENTIAL/,
    );
  });

  test('its own sign-in: challenge, personal_sign, verify -> its own token', async () => {
    const ch = await request(agent.url, 'POST', '/v1/auth/challenge', { body: { wallet_address: ownWallet.address } });
    assert.equal(ch.status, 200, ch.text);
    const signature = await ownWallet.sign(ch.body.message);
    const vr = await request(agent.url, 'POST', '/v1/auth/verify', { body: { wallet_address: ownWallet.address, signature, message: ch.body.message } });
    assert.equal(vr.status, 200, vr.text);
    assert.equal(vr.body.expires_in, 3600);
    assert.equal(vr.body.refresh_token, undefined);
    const r = await request(agent.url, 'POST', '/v1/chat', { token: vr.body.access_token, body: { message: 'mine' } });
    assert.equal(r.status, 200);
    const replay = await request(agent.url, 'POST', '/v1/auth/verify', { body: { wallet_address: ownWallet.address, signature, message: ch.body.message } });
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error.code, 'INVALID_SIGNATURE');
    const stranger = newEvmWallet();
    const refused = await request(agent.url, 'POST', '/v1/auth/challenge', { body: { wallet_address: stranger.address } });
    assert.equal(refused.status, 403);
  });
});
