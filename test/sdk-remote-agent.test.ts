import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, startServer, tempDir, waitFor, sleep, type TestServer } from './helpers/server.js';
import { assignNft, newEvmWallet } from './helpers/wallets.js';
import { ProcessProvider, LAG_LIMIT } from './helpers/process-provider.js';
import { PanthersClient, type Tokens } from '../src/sdk/index.js';

/**
 * The TS SDK and `panthers chat` with a remote agent (a real `panthers agent` process started from
 * the deploy spec): they exchange the session token for an agent-scoped one by themselves, send
 * only that one to the agent's endpoint, and renew it when it expires or is refused.
 */
describe('SDK and CLI exchange tokens for remote agents', { timeout: 180_000 }, () => {
  let server: TestServer;
  const provider = new ProcessProvider('akash', { PANTHERS_AGENT_REVOCATION_POLL_MS: '200' });
  const wallet = newEvmWallet();
  /** every request the SDK made: where, and with which token */
  const sent: { url: string; auth: string | undefined }[] = [];
  const recordingFetch: typeof fetch = (input, init) => {
    const h = new Headers(init?.headers);
    sent.push({ url: String(input), auth: h.get('authorization') ?? undefined });
    return fetch(input, init);
  };
  let client: PanthersClient;
  let endpoint: string;

  before(async () => {
    // Agent tokens of 2 s: the SDK must renew them between calls.
    server = await startServer({ PANTHERS_HEALTH_INTERVAL_MS: '60000', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_LIMIT, PANTHERS_AGENT_TOKEN_TTL_SEC: '2' }, { providers: { akash: provider } });
    assignNft(server, '960', wallet.address);
    client = new PanthersClient({ baseUrl: server.url, fetch: recordingFetch });
    await client.signInWithPrivateKey(wallet.privateKey, '960');
    await client.deployments.create({ nft_token_id: '960', provider: 'akash' });
    const d = await waitFor(async () => {
      const g = await client.deployments.get('960');
      return g.status === 'running' ? g : undefined;
    }, 20_000);
    endpoint = d!.endpoint_url!;
  });
  after(async () => {
    await provider.stopAll();
    await server.stop();
  });

  test('chat, stream (SSE and WS), history and clear go to the agent with an agent token only', async () => {
    const agent = client.agent('960');
    assert.equal(await agent.isRemote(), true);
    const first = await agent.chat('hello remote agent');
    assert.match(first.response, /hello remote agent/);
    const stream = agent.chatStream({ message: 'stream it', conversation_id: first.conversation_id });
    let text = '';
    for await (const c of stream) text += c.content;
    const final = await stream.final;
    assert.equal(text, final.response);
    const ws = agent.chatOverWs({ message: 'over ws', conversation_id: first.conversation_id });
    let wsText = '';
    for await (const c of ws) wsText += c.content;
    assert.equal(wsText, (await ws.final).response);
    const h = await agent.history({ conversation_id: first.conversation_id });
    assert.equal(h.total, 6);
    assert.equal((await agent.info()).nft_token_id, '960');
    assert.equal((await agent.health()).status, 'healthy');
    // After the 2 s token expired, the next call exchanges again by itself.
    await sleep(2100);
    assert.equal((await agent.clear(first.conversation_id)).deleted, 6);

    const session = client.tokens!.access_token;
    const toAgent = sent.filter((s) => s.url.startsWith(endpoint));
    assert.ok(toAgent.length >= 5, `${toAgent.length} calls reached the agent`);
    for (const s of toAgent) assert.notEqual(s.auth, `Bearer ${session}`, `the session token went to ${s.url}`);
    const exchanges = sent.filter((s) => s.url.endsWith('/v1/agents/960/token'));
    assert.ok(exchanges.length >= 2, 'renewed after expiry');
    for (const s of exchanges) assert.equal(s.auth, `Bearer ${session}`);
  });

  test('a token the agent refuses (ownership cut-off) is exchanged again once; a revoked session surfaces as UNAUTHORIZED', async () => {
    const agent = client.agent('960');
    await agent.chat('before the cut-off');
    server.app.ctx.agentAccess.ownershipLost('960');
    await sleep(1100); // tokens minted in the cut-off's second are refused too
    await sleep(300); // the agent's next pull
    const after = await agent.chat('after the cut-off');
    assert.match(after.response, /after the cut-off/);

    const other = new PanthersClient({ baseUrl: server.url });
    await other.signInWithPrivateKey(wallet.privateKey, '960');
    const otherAgent = other.agent('960');
    await otherAgent.chat('second session');
    await other.auth.logout().catch(() => undefined);
    // Signed out: the client has no session to exchange with.
    await assert.rejects(otherAgent.chat('gone'), (e: { code?: string }) => e.code === 'UNAUTHORIZED');
  });

  test('`panthers chat` streams from the remote agent with the saved session', async () => {
    const file = path.join(tempDir('panthers-cli-remote-'), 'session.json');
    const tokens = client.tokens as Tokens;
    fs.writeFileSync(file, JSON.stringify({ ...tokens, url: server.url }), { mode: 0o600 });
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'chat', '--session', file, '--nft', '960', '--message', 'from the terminal'], {
        env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /from the terminal/);
    assert.match(out.stderr, /\[conversation [0-9a-f-]+ · \d+ tokens\]/);
  });

  test('a stopped and redeployed agent is followed to its new endpoint', async () => {
    // refreshMarginMs 0: the agent token is used until it expires (2 s here), not renewed early.
    const c2 = new PanthersClient({ baseUrl: server.url, fetch: recordingFetch, tokens: client.tokens, refreshMarginMs: 0 });
    const agent = c2.agent('960');
    await agent.chat('before the stop');
    await c2.deployments.stop('960');
    await waitFor(async () => (await c2.deployments.get('960')).status === 'stopped');
    // Its token may still be valid but the agent is gone: the client asks again and learns why.
    await assert.rejects(agent.chat('nobody there'), (e: { code?: string }) => e.code === 'NOT_FOUND');
    await c2.deployments.create({ nft_token_id: '960', provider: 'akash' });
    const d = await waitFor(async () => {
      const g = await c2.deployments.get('960');
      return g.status === 'running' ? g : undefined;
    }, 20_000);
    assert.notEqual(d!.endpoint_url, endpoint);
    const r = await agent.chat('at the new place');
    assert.match(r.response, /at the new place/);
    assert.ok(sent.some((s) => s.url.startsWith(d!.endpoint_url!)), 'called the new endpoint');
  });
});
