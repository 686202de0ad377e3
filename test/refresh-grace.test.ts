import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnCli, request, sleep, tempDir, type ServerProcess } from './helpers/server.js';
import { newEvmWallet } from './helpers/wallets.js';
import { signInOver, LAG_MS } from './helpers/sign-in-http.js';
import { FakeEvmRpc } from './fakes/evm-rpc.js';

/**
 * /auth/refresh survives a blip: ownership is checked before the rotation (a failing RPC leaves
 * the token current), and the immediately previous token is answered again, with the same new
 * pair, for PANTHERS_REFRESH_GRACE_MS (a lost response, a crash between commit and answer).
 * Through the real server process with the evm verifier against the fake JSON-RPC node.
 */
let rpc: FakeEvmRpc;
test.before(async () => {
  rpc = await new FakeEvmRpc().start();
});
test.after(() => rpc.stop());

let nextNft = 9000n;
function envFor(dataDir: string, graceMs: number): Record<string, string> {
  return {
    PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS,
    PANTHERS_OWNERSHIP: 'evm', PANTHERS_EVM_RPC_URL: rpc.url, PANTHERS_NFT_CONTRACT: rpc.contract,
    PANTHERS_OWNERSHIP_CACHE_MS: '0', PANTHERS_REFRESH_GRACE_MS: String(graceMs),
  };
}

async function session(p: ServerProcess) {
  const nft = nextNft++;
  const wallet = newEvmWallet();
  rpc.owners.set(nft, wallet.address);
  return signInOver(p.url, wallet, String(nft));
}

const refresh = (p: ServerProcess, token: string) => request(p.url, 'POST', '/v1/auth/refresh', { body: { refresh_token: token } });

async function stop(p: ServerProcess): Promise<void> {
  p.child.kill('SIGTERM');
  await p.exited;
}

test('a failing RPC answers 503 and rotates nothing: the same token works once the RPC is back', async () => {
  const p = await spawnCli(['serve'], envFor(tempDir(), 30_000));
  try {
    const s = await session(p);
    rpc.failCalls = { code: -32000, message: 'header not found' };
    const blip = await refresh(p, s.refresh_token);
    assert.equal(blip.status, 503, blip.text);
    assert.equal(blip.body.error.code, 'SERVICE_UNAVAILABLE');
    rpc.failCalls = undefined;
    rpc.down = true;
    assert.equal((await refresh(p, s.refresh_token)).status, 503, 'HTTP 503 from the node too');
    rpc.down = false;
    const ok = await refresh(p, s.refresh_token);
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await request(p.url, 'GET', '/v1/auth/session', { token: ok.body.access_token })).status, 200);
  } finally {
    rpc.failCalls = undefined;
    rpc.down = false;
    await stop(p);
  }
});

test('a lost response: the retry with the previous token gets the same pair; rotation goes on; the window closes', async () => {
  const p = await spawnCli(['serve'], envFor(tempDir(), 800));
  try {
    const s = await session(p);
    const lost = await refresh(p, s.refresh_token); // the client never sees this answer
    assert.equal(lost.status, 200);
    const retry = await refresh(p, s.refresh_token);
    assert.equal(retry.status, 200, retry.text);
    assert.equal(retry.body.refresh_token, lost.body.refresh_token, 'the same new refresh token');
    assert.equal(retry.body.access_token, lost.body.access_token, 'the same new access token');
    const next = await refresh(p, retry.body.refresh_token);
    assert.equal(next.status, 200, 'the new token rotates as usual');
    assert.notEqual(next.body.refresh_token, retry.body.refresh_token);

    // After the window the previous token is reuse again: the session is revoked.
    await sleep(1000);
    const late = await refresh(p, retry.body.refresh_token);
    assert.equal(late.status, 401);
    assert.equal((await request(p.url, 'GET', '/v1/auth/session', { token: next.body.access_token })).status, 401);
    assert.equal((await refresh(p, next.body.refresh_token)).status, 401, 'the whole session ended');
  } finally {
    await stop(p);
  }
});

test('a refresh cut by a crash: after kill -9 and a restart the retry gets the same pair (nothing of it was in memory)', async () => {
  const dataDir = tempDir();
  let p = await spawnCli(['serve'], envFor(dataDir, 30_000));
  try {
    const s = await session(p);
    const answered = await refresh(p, s.refresh_token); // committed; then the process dies before the client reads it
    assert.equal(answered.status, 200);
    p.child.kill('SIGKILL');
    await p.exited;
    p = await spawnCli(['serve'], envFor(dataDir, 30_000));
    const retry = await refresh(p, s.refresh_token);
    assert.equal(retry.status, 200, retry.text);
    assert.equal(retry.body.refresh_token, answered.body.refresh_token);
    assert.equal(retry.body.access_token, answered.body.access_token);
  } finally {
    await stop(p);
  }
});

test('ownership lost at refresh: 403 and the session is revoked (checked before any rotation)', async () => {
  const p = await spawnCli(['serve'], envFor(tempDir(), 30_000));
  try {
    const s = await session(p);
    const nft = BigInt((await request(p.url, 'GET', '/v1/auth/session', { token: s.access_token })).body.nft_token_id);
    rpc.owners.set(nft, newEvmWallet().address); // no log: only ownerOf says so
    const r = await refresh(p, s.refresh_token);
    assert.equal(r.status, 403);
    assert.equal((await request(p.url, 'GET', '/v1/auth/session', { token: s.access_token })).status, 401);
  } finally {
    await stop(p);
  }
});
