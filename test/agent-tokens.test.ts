import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, sleep, waitFor, type TestServer } from './helpers/server.js';
import { signIn, assignNft, newEvmWallet, type SignedIn } from './helpers/wallets.js';
import { ProcessProvider, LAG_LIMIT } from './helpers/process-provider.js';
import { openWs } from './helpers/ws.js';

/** How often the remote agents of this test pull their revocation list. */
const POLL_MS = 300;

async function deployRemote(server: TestServer, who: SignedIn, nft: string): Promise<string> {
  const d = await server.request('POST', '/v1/deployments', { token: who.access_token, body: { nft_token_id: nft, provider: 'akash' } });
  assert.equal(d.status, 202, d.text);
  const running = await waitFor(async () => {
    const g = await server.request('GET', `/v1/deployments/${nft}`, { token: who.access_token });
    return g.body.status === 'running' ? g.body : undefined;
  }, 20_000);
  return running.endpoint_url as string;
}

async function exchange(server: TestServer, who: SignedIn, nft: string) {
  return server.request('POST', `/v1/agents/${nft}/token`, { token: who.access_token });
}

/** Polls the agent with `token` until it refuses it; resolves with the milliseconds that took. */
async function msUntilRefused(endpoint: string, token: string, since: number, limitMs = 10_000): Promise<{ ms: number; status: number; body: any }> {
  for (;;) {
    const r = await request(endpoint, 'GET', '/v1/chat/history?conversation_id=none', { token });
    if (r.status === 401 || r.status === 403) return { ms: performance.now() - since, status: r.status, body: r.body };
    if (performance.now() - since > limitMs) throw new Error(`still accepted after ${limitMs} ms: ${r.status} ${r.text}`);
    await sleep(10);
  }
}

/**
 * Agent-scoped tokens through real processes: the orchestrator server, and real `panthers agent`
 * processes started from the deploy spec's env and secrets (what a provider's container gets).
 */
describe('agent-scoped tokens and remote agents', { timeout: 180_000 }, () => {
  let server: TestServer;
  const provider = new ProcessProvider('akash', { PANTHERS_AGENT_REVOCATION_POLL_MS: String(POLL_MS) });
  let owner: SignedIn;
  let endpoint: string;
  const latencies: Record<string, number> = {};

  before(async () => {
    // Grace window off: a refresh token presented twice is reuse at once.
    server = await startServer({ PANTHERS_HEALTH_INTERVAL_MS: '60000', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_LIMIT, PANTHERS_OWNERSHIP_CACHE_MS: '300', PANTHERS_REFRESH_GRACE_MS: '0' }, { providers: { akash: provider } });
    owner = await signIn(server, { nft: '900' });
    endpoint = await deployRemote(server, owner, '900');
  });
  after(async () => {
    await provider.stopAll();
    await server.stop();
    if (Object.keys(latencies).length) console.log(`# revocation latency at the remote agent (poll ${POLL_MS} ms): ${JSON.stringify(latencies)}`);
  });

  test('POST /v1/agents/{nft}/token: a short-lived token for that agent only', async () => {
    const t = await exchange(server, owner, '900');
    assert.equal(t.status, 200, t.text);
    assert.equal(t.body.token_type, 'Bearer');
    assert.equal(t.body.audience, 'agent:900');
    assert.ok(t.body.expires_in > 0 && t.body.expires_in <= 900, `expires_in ${t.body.expires_in}`);
    assert.equal(t.body.endpoint_url, endpoint);
    const payload = JSON.parse(Buffer.from(t.body.access_token.split('.')[1], 'base64url').toString());
    assert.equal(payload.aud, 'agent:900');
    assert.equal(payload.sid, owner.session_id);
    assert.equal(payload.exp - payload.iat, t.body.expires_in);

    // The remote agent accepts it: plain and streamed chat, history.
    const chat = await request(endpoint, 'POST', '/v1/chat', { token: t.body.access_token, body: { message: 'hello remote' } });
    assert.equal(chat.status, 200, chat.text);
    assert.match(chat.body.response, /hello remote/);
    const sse = await fetch(`${endpoint}/v1/chat`, {
      method: 'POST', headers: { authorization: `Bearer ${t.body.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'streamed', conversation_id: chat.body.conversation_id, stream: true }),
    });
    assert.equal(sse.status, 200);
    assert.match(sse.headers.get('content-type') ?? '', /text\/event-stream/);
    assert.match(await sse.text(), /"done":true/);
    const h = await request(endpoint, 'GET', `/v1/chat/history?conversation_id=${chat.body.conversation_id}`, { token: t.body.access_token });
    assert.equal(h.body.total, 4);

    // The orchestrator refuses it everywhere but this NFT's agent.
    for (const [m, p] of [['GET', '/v1/deployments/900'], ['GET', '/v1/auth/session'], ['POST', '/v1/auth/logout'], ['POST', '/v1/agents/900/token']] as const) {
      const r = await server.request(m, p, { token: t.body.access_token });
      assert.equal(r.status, 401, `${m} ${p}: ${r.text}`);
      assert.equal(r.body.error.code, 'UNAUTHORIZED');
    }
    const wrong = await server.request('GET', '/v1/deployments', { token: t.body.access_token });
    assert.equal(wrong.body.error.details.reason, 'wrong_audience');
    assert.equal(wrong.body.error.details.expected, 'orchestrator');
  });

  test('the remote agent refuses orchestrator session tokens, other agents\' tokens and forgeries', async () => {
    const session = await request(endpoint, 'POST', '/v1/chat', { token: owner.access_token, body: { message: 'hi' } });
    assert.equal(session.status, 401, session.text);
    assert.equal(session.body.error.code, 'UNAUTHORIZED');
    assert.equal(session.body.error.details.reason, 'wrong_audience');
    assert.equal(session.body.error.details.expected, 'agent:900');

    // Another NFT's agent token (same wallet, a second remote agent).
    assignNft(server, '901', owner.wallet);
    const endpoint901 = await deployRemote(server, owner, '901');
    const t901 = await exchange(server, owner, '901');
    assert.equal(t901.status, 200, t901.text);
    const cross = await request(endpoint, 'POST', '/v1/chat', { token: t901.body.access_token, body: { message: 'hi' } });
    assert.equal(cross.status, 401, cross.text);
    assert.equal(cross.body.error.details.reason, 'wrong_audience');
    const ok901 = await request(endpoint901, 'POST', '/v1/chat', { token: t901.body.access_token, body: { message: 'hi 901' } });
    assert.equal(ok901.status, 200, ok901.text);
    const forged = await request(endpoint, 'POST', '/v1/chat', { token: t901.body.access_token.slice(0, -6) + 'AAAAAA', body: { message: 'hi' } });
    assert.equal(forged.status, 401);

    // Only the owner can exchange; only for a running agent.
    const stranger = await signIn(server, { nft: '902' });
    const notOwner = await exchange(server, stranger, '900');
    assert.equal(notOwner.status, 403, notOwner.text);
    assert.equal(notOwner.body.error.code, 'FORBIDDEN');
    const none = await exchange(server, stranger, '902');
    assert.equal(none.status, 404, none.text);
    assert.equal((await server.request('POST', '/v1/agents/900/token')).status, 401);
  });

  test('logout reaches the remote agent within the poll bound (measured)', async () => {
    const me = await signIn(server, { nft: '900', wallet: newEvmWalletFor(owner) });
    const t = await exchange(server, me, '900');
    assert.equal((await request(endpoint, 'GET', '/v1/chat/history?conversation_id=none', { token: t.body.access_token })).status, 404);
    // A WebSocket opened before the logout.
    const sock = await openWs(endpoint, t.body.access_token);
    const t0 = performance.now();
    const out = await server.request('POST', '/v1/auth/logout', { token: me.access_token });
    assert.equal(out.status, 200);
    const refused = await msUntilRefused(endpoint, t.body.access_token, t0);
    latencies.logout_ms = Math.round(refused.ms);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.details.reason, 'session_revoked');
    assert.ok(refused.ms < POLL_MS + 1500, `logout took ${refused.ms} ms to reach the agent`);
    // ... cannot start another turn either.
    sock.ws.send(JSON.stringify({ type: 'chat_stream', message: 'after logout' }));
    const err = await sock.next((f) => f.type === 'error' || (f.type === 'chat_chunk' && f.done === true));
    assert.equal(err.type, 'error', JSON.stringify(err));
    assert.equal(err.error.code, 'UNAUTHORIZED');
    sock.ws.close();
  });

  test('refresh-token reuse reaches the remote agent', async () => {
    const me = await signIn(server, { nft: '900', wallet: newEvmWalletFor(owner) });
    const t = await exchange(server, me, '900');
    const r1 = await server.request('POST', '/v1/auth/refresh', { body: { refresh_token: me.refresh_token } });
    assert.equal(r1.status, 200);
    const t0 = performance.now();
    const reuse = await server.request('POST', '/v1/auth/refresh', { body: { refresh_token: me.refresh_token } });
    assert.equal(reuse.status, 401);
    const refused = await msUntilRefused(endpoint, t.body.access_token, t0);
    latencies.refresh_reuse_ms = Math.round(refused.ms);
    assert.equal(refused.body.error.details.reason, 'session_revoked');
  });

  test('ownership loss reaches the remote agent (ownershipLost and the registry answer)', async () => {
    const me = await signIn(server, { nft: '900', wallet: newEvmWalletFor(owner) });
    const t = await exchange(server, me, '900');
    assert.equal((await request(endpoint, 'POST', '/v1/chat', { token: t.body.access_token, body: { message: 'still mine' } })).status, 200);
    const t0 = performance.now();
    server.app.ctx.agentAccess.ownershipLost('900');
    const refused = await msUntilRefused(endpoint, t.body.access_token, t0);
    latencies.ownership_lost_ms = Math.round(refused.ms);
    assert.equal(refused.body.error.details.reason, 'ownership_lost');
    // A token minted after the cut-off works again (the same owner, a later second).
    await sleep(1100);
    const again = await exchange(server, me, '900');
    assert.equal((await request(endpoint, 'POST', '/v1/chat', { token: again.body.access_token, body: { message: 'again' } })).status, 200);
  });

  test('the remote agent\'s own sign-in: ownership asked of the orchestrator, message naming its endpoint', async () => {
    // The owner's exchanged token from before the NFT changes hands.
    const old = await exchange(server, owner, '900');
    assert.equal(old.status, 200, old.text);
    const wallet = newEvmWallet();
    assignNft(server, '900', wallet.address);
    // The agent caches ownership answers for PANTHERS_OWNERSHIP_CACHE_MS (passed from the orchestrator's).
    let last: Awaited<ReturnType<typeof request>> | undefined;
    const ch = (await waitFor(async () => {
      last = await request(endpoint, 'POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address } });
      return last.status === 200 ? last : undefined;
    }, 5000).catch(() => assert.fail(`challenge: ${last?.status} ${last?.text}`)))!;
    const url = new URL(endpoint);
    assert.ok(ch.body.message.startsWith(`${url.host} wants you to sign in`), ch.body.message);
    assert.match(ch.body.message, new RegExp(`\\nURI: ${url.origin}\\n`));
    const signature = await wallet.sign(ch.body.message);
    const vr = await request(endpoint, 'POST', '/v1/auth/verify', { body: { wallet_address: wallet.address, signature, message: ch.body.message } });
    assert.equal(vr.status, 200, vr.text);
    assert.deepEqual(Object.keys(vr.body).sort(), ['access_token', 'expires_in']);
    const chat = await request(endpoint, 'POST', '/v1/chat', { token: vr.body.access_token, body: { message: 'signed in here' } });
    assert.equal(chat.status, 200, chat.text);
    // Its token is the agent's alone: the orchestrator does not know its key.
    assert.equal((await server.request('GET', '/v1/deployments/900', { token: vr.body.access_token })).status, 401);
    // The previous owner is out (the orchestrator answered the new owner) ...
    const stale = await request(endpoint, 'POST', '/v1/auth/challenge', { body: { wallet_address: owner.wallet } });
    assert.equal(stale.status, 403, stale.text);
    // ... and so is the previous owner's exchanged token (revoked session, cut-off, or the
    // agent's own ownership check: whichever comes first).
    const gone = await request(endpoint, 'POST', '/v1/chat', { token: old.body.access_token, body: { message: 'not mine any more' } });
    assert.ok(gone.status === 401 || gone.status === 403, `${gone.status} ${gone.text}`);
    // A message issued by the orchestrator is not accepted by the agent.
    const orch = await server.request('POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address, nft_token_id: '900' } });
    const sig2 = await wallet.sign(orch.body.message);
    const cross = await request(endpoint, 'POST', '/v1/auth/verify', { body: { wallet_address: wallet.address, signature: sig2, message: orch.body.message } });
    assert.equal(cross.status, 401);
    assert.equal(cross.body.error.code, 'INVALID_SIGNATURE');
    // Back to the first owner, in a new session (the old one ended with the transfer).
    owner = await signIn(server, { nft: '900', wallet: newEvmWalletFor(owner) });
  });

  test('the deployment credential answers only for its NFT and dies with the deployment', async () => {
    const deployment = [...provider.agents.values()].find((a) => a.env.PANTHERS_AGENT_NFT === '900')!;
    const cred = deployment.env.PANTHERS_AGENT_CREDENTIAL!;
    assert.match(cred, /^pac_/);
    assert.equal(deployment.spec.env.PANTHERS_AGENT_CREDENTIAL, undefined, 'a secret, not plain env');
    assert.equal(deployment.env.PANTHERS_ORCHESTRATOR_URL, server.app.ctx.config.publicUrl);
    const owner900 = await server.request('GET', '/v1/agents/900/owner', { headers: { authorization: `Bearer ${cred}` } });
    assert.equal(owner900.status, 200, owner900.text);
    assert.equal(owner900.body.owner_address.toLowerCase(), owner.wallet.toLowerCase());
    const other = await server.request('GET', '/v1/agents/901/owner', { headers: { authorization: `Bearer ${cred}` } });
    assert.equal(other.status, 401);
    const rev = await server.request('GET', '/v1/agents/900/revocations', { headers: { authorization: `Bearer ${cred}` } });
    assert.equal(rev.status, 200);
    assert.equal(rev.body.endpoint_url, endpoint);
    assert.ok(Array.isArray(rev.body.revoked_sessions));
    assert.equal((await server.request('GET', '/v1/agents/900/revocations', { headers: { authorization: 'Bearer pac_x.y' } })).status, 401);
    assert.equal((await server.request('GET', '/v1/agents/900/revocations', { token: owner.access_token })).status, 401);

    const stop = await server.request('DELETE', '/v1/deployments/900', { token: owner.access_token });
    assert.equal(stop.status, 200, stop.text);
    await waitFor(async () => (await server.request('GET', '/v1/deployments/900', { token: owner.access_token })).body.status === 'stopped');
    const dead = await server.request('GET', '/v1/agents/900/owner', { headers: { authorization: `Bearer ${cred}` } });
    assert.equal(dead.status, 401);
    assert.match(dead.body.error.details.reason, /stopped/);
  });
});

/** The same wallet as `who` again (a second session of the owner). */
function newEvmWalletFor(who: SignedIn) {
  return { address: who.wallet, privateKey: who.privateKey, sign: (m: string) => signWith(who.privateKey, m) };
}

async function signWith(privateKey: string, message: string): Promise<string> {
  const { Wallet } = await import('ethers');
  return new Wallet(privateKey).signMessage(message);
}

describe('a remote agent that cannot reach its orchestrator', { timeout: 120_000 }, () => {
  test('fails closed: orchestrator tokens are refused (503) once the last good revocation pull is older than PANTHERS_AGENT_REVOCATION_MAX_STALE_MS', async () => {
    const provider = new ProcessProvider('akash', { PANTHERS_AGENT_REVOCATION_POLL_MS: '200', PANTHERS_AGENT_REVOCATION_MAX_STALE_MS: '1000' });
    const server = await startServer({ PANTHERS_HEALTH_INTERVAL_MS: '60000', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_LIMIT }, { providers: { akash: provider } });
    try {
      const owner = await signIn(server, { nft: '950' });
      const endpoint = await deployRemote(server, owner, '950');
      const t = await exchange(server, owner, '950');
      assert.equal((await request(endpoint, 'POST', '/v1/chat', { token: t.body.access_token, body: { message: 'up' } })).status, 200);
      await server.stop(); // the orchestrator goes away; the agent process keeps running
      const t0 = performance.now();
      let r;
      for (;;) {
        r = await request(endpoint, 'POST', '/v1/chat', { token: t.body.access_token, body: { message: 'still?' } });
        if (r.status !== 200 || performance.now() - t0 > 5000) break;
        await sleep(50);
      }
      assert.equal(r.status, 503, r.text);
      assert.equal(r.body.error.code, 'SERVICE_UNAVAILABLE');
      assert.equal(r.body.error.details.reason, 'revocations_stale');
      assert.ok(performance.now() - t0 < 2500, 'refused within the stale bound');
    } finally {
      await provider.stopAll();
      await server.stop();
    }
  });
});
