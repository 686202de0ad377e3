import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Wallet, getBytes } from 'ethers';
import { startServer, type TestServer } from './helpers/server.js';
import { assignNft, newEvmWallet } from './helpers/wallets.js';
import { createClient, PanthersError, type ChatChunk, type DeploymentUpdate, type Eip1193Provider, type Tokens } from '../src/sdk/index.js';
import { sseData } from '../src/sdk/sse.js';
import { signRequest as sdkSignRequest } from '../src/sdk/signing.js';
import { signRequest as serverSignRequest } from '../src/guards/request-signing.js';

/** fetch that records "METHOD path status" for every call the SDK makes. */
function recordingFetch(log: string[]): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    log.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname} ${res.status}`);
    return res;
  };
}

async function collect(stream: AsyncIterable<ChatChunk>): Promise<string[]> {
  const out: string[] = [];
  for await (const c of stream) out.push(c.content);
  return out;
}

async function watchUntil(iter: AsyncIterable<DeploymentUpdate>, stop: (u: DeploymentUpdate) => boolean): Promise<DeploymentUpdate[]> {
  const seen: DeploymentUpdate[] = [];
  for await (const u of iter) {
    seen.push(u);
    if (stop(u)) break;
  }
  return seen;
}

async function withServer(env: Record<string, string>, fn: (s: TestServer) => Promise<void>, opts: Parameters<typeof startServer>[1] = {}): Promise<void> {
  const server = await startServer(env, opts);
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

// Each case runs its own server; they run side by side so the rate-limit wait overlaps the rest.
describe('TypeScript SDK against the real server', { concurrency: true }, () => {
  it('signs in with a private key, deploys and watches to running, chats (SSE and WS), reads and clears history', async () => {
    await withServer({}, async (server) => {
      const w = newEvmWallet();
      assignNft(server, '7', w.address);
      const saved: (Tokens | undefined)[] = [];
      const client = createClient({ baseUrl: server.url, onTokens: (t) => saved.push(t) });

      const tokens = await client.signInWithPrivateKey(w.privateKey, '7');
      assert.equal(tokens.wallet_address, w.address);
      assert.equal(saved.length, 1);
      assert.equal(saved[0]!.refresh_token, tokens.refresh_token);
      const session = await client.auth.session();
      assert.equal(session.wallet_address, w.address);
      assert.equal(session.nft_token_id, '7');

      const created = await client.deployments.create({ nft_token_id: '7', provider: 'local' });
      assert.equal(created.provider, 'local');
      const updates = await watchUntil(client.deployments.watch('7', { signal: AbortSignal.timeout(15_000) }), (u) => u.status === 'running' || u.status === 'failed');
      const last = updates.at(-1)!;
      assert.equal(last.status, 'running', JSON.stringify(updates));
      assert.equal(last.deployment_id, created.deployment_id);
      assert.equal((await client.deployments.get('7')).status, 'running');
      const list = await client.deployments.list({ status: 'running', limit: 10 });
      assert.deepEqual(list.deployments.map((d) => d.nft_token_id), ['7']);
      assert.equal(list.pagination.limit, 10);

      const agent = client.agent('7');
      assert.equal((await agent.health()).status, 'healthy');
      assert.equal((await agent.info()).nft_token_id, '7');

      const stream = agent.chatStream('Hello there, panther');
      const chunks = await collect(stream);
      const final = await stream.final;
      assert.ok(chunks.length > 1, `expected several chunks, got ${chunks.length}`);
      assert.equal(chunks.join(''), final.response);
      assert.equal(final.incomplete, false);
      assert.ok(final.tokens_used > 0);
      const conversation = final.conversation_id;

      const whole = await agent.chat({ message: 'second turn', conversation_id: conversation });
      assert.equal(whole.conversation_id, conversation);

      const overWs = agent.chatOverWs({ message: 'third turn over the socket', conversation_id: conversation });
      const wsChunks = await collect(overWs);
      const wsFinal = await overWs.final;
      assert.ok(wsChunks.length > 1);
      assert.equal(wsChunks.join(''), wsFinal.response);
      assert.equal(wsFinal.conversation_id, conversation);

      const history = await agent.history({ conversation_id: conversation });
      assert.equal(history.total, 6);
      assert.deepEqual(history.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
      assert.equal(history.messages[1]!.content, final.response);
      assert.equal(history.messages[5]!.content, wsFinal.response);

      const cleared = await agent.clear(conversation);
      assert.equal(cleared.deleted, 6);

      // Errors arrive as PanthersError with the API's code, status and details.
      await assert.rejects(
        client.deployments.create({ nft_token_id: '7', provider: 'mars' as never }),
        (e: unknown) => e instanceof PanthersError && e.code === 'INVALID_FIELD' && e.status === 400 && e.details.field === 'provider' && typeof e.requestId === 'string',
      );
      await assert.rejects(client.deployments.get('999'), (e: unknown) => e instanceof PanthersError && e.code === 'NOT_FOUND' && e.status === 404);

      const stopped = await client.deployments.stop('7');
      assert.equal(stopped.deployment_id, created.deployment_id);
      assert.ok(['stopping', 'stopped'].includes(stopped.status));

      await client.auth.logout();
      assert.equal(client.tokens, undefined);
      assert.equal(saved.at(-1), undefined);
      await assert.rejects(client.auth.session(), (e: unknown) => e instanceof PanthersError && e.code === 'UNAUTHORIZED');
    });
  });

  it('signs in through an EIP-1193 wallet (personal_sign with hex data) and reads health and JWKS', async () => {
    await withServer({}, async (server) => {
      const wallet = Wallet.createRandom();
      assignNft(server, 'slug-1', wallet.address);
      const calls: string[] = [];
      // A stand-in for window.ethereum, signing with ethers (independent of our signing code).
      const provider: Eip1193Provider = {
        async request({ method, params }) {
          calls.push(method);
          if (method === 'eth_requestAccounts') return [wallet.address];
          if (method === 'personal_sign') {
            const [data, address] = params as [string, string];
            assert.equal(address, wallet.address);
            return wallet.signMessage(getBytes(data));
          }
          throw new Error(`unexpected ${method}`);
        },
      };
      const client = createClient({ baseUrl: server.url });
      await client.signInWithProvider(provider, undefined, 'slug-1');
      assert.deepEqual(calls, ['eth_requestAccounts', 'personal_sign']);
      assert.equal((await client.auth.session()).wallet_address, wallet.address);
      assert.equal((await client.health()).status, 'healthy');
      assert.ok((await client.jwks()).keys.length >= 1);
      assert.equal((await client.version()).openapi, '/v1/openapi.json');
    });
  });

  it('refreshes the access token before it expires and once on TOKEN_EXPIRED', async () => {
    let offsetMs = 0;
    await withServer({}, async (server) => {
      const w = newEvmWallet();
      assignNft(server, '8', w.address);
      const log: string[] = [];
      let clientSkewMs = 0;
      const client = createClient({ baseUrl: server.url, fetch: recordingFetch(log), now: () => Date.now() + clientSkewMs });
      const first = await client.signInWithPrivateKey(w.privateKey, '8');

      // The server's clock jumps 2 h ahead: the access token is expired there, not here.
      offsetMs = 2 * 3600_000;
      log.length = 0;
      const s = await client.auth.session();
      assert.equal(s.nft_token_id, '8');
      assert.deepEqual(log, ['GET /v1/auth/session 401', 'POST /v1/auth/refresh 200', 'GET /v1/auth/session 200']);
      const second = client.tokens!;
      assert.notEqual(second.refresh_token, first.refresh_token, 'the refresh token rotates');

      // Within a minute of expiry by the client's clock: refreshed first, no 401 at all.
      clientSkewMs = second.access_expires_at! - Date.now() - 30_000;
      log.length = 0;
      await client.auth.session();
      assert.deepEqual(log, ['POST /v1/auth/refresh 200', 'GET /v1/auth/session 200']);
      assert.notEqual(client.tokens!.refresh_token, second.refresh_token);

      // Concurrent calls near expiry share one refresh (two would reuse a rotated token and end the session).
      clientSkewMs = client.tokens!.access_expires_at! - Date.now() - 30_000;
      log.length = 0;
      await Promise.all([client.auth.session(), client.auth.session(), client.deployments.list()]);
      assert.equal(log.filter((l) => l.startsWith('POST /v1/auth/refresh')).length, 1, log.join('\n'));
    }, { now: () => Date.now() + offsetMs });
  });

  it('signs requests with the session signing key when the server requires it (same bytes as the server)', async () => {
    // The SDK's pure-JS HMAC and the server's node:crypto one agree byte for byte.
    for (const [m, p, b] of [['POST', '/v1/deployments', '{"a":"é✓"}'], ['DELETE', '/v1/deployments/7?x=1', ''], ['get', '/v1/agents/7/chat/history?conversation_id=a', '']] as const) {
      const key = 'ab'.repeat(32);
      assert.equal(sdkSignRequest(key, m, p, b, 1700000000), serverSignRequest(key, m, p, b, 1700000000));
    }

    await withServer({ PANTHERS_REQUIRE_SIGNED_REQUESTS: 'true' }, async (server) => {
      const w = newEvmWallet();
      assignNft(server, '9', w.address);
      const client = createClient({ baseUrl: server.url });
      const tokens = await client.signInWithPrivateKey(w.privateKey, '9');
      // /auth/verify hands out the session's key; the client keeps it and signs with it from now on.
      assert.match(tokens.signing_key ?? '', /^[0-9a-f]{64}$/);

      const unsigned = await server.request('POST', '/v1/deployments', { token: tokens.access_token, body: { nft_token_id: '9', provider: 'local' } });
      assert.equal(unsigned.status, 401);
      assert.equal(unsigned.body.error.code, 'INVALID_SIGNATURE');

      const created = await client.deployments.create({ nft_token_id: '9', provider: 'local' });
      assert.equal(created.status === 'pending' || created.status === 'deploying' || created.status === 'running', true);
      // Two identical signed calls in the same second: the second is not refused as a replay.
      const [a, b] = await Promise.all([client.deployments.stop('9'), client.deployments.stop('9')]);
      assert.equal(a.deployment_id, created.deployment_id);
      assert.equal(b.deployment_id, created.deployment_id);
    });
  });

  it('retries after 429 RATE_LIMITED, waiting out Retry-After, within bounds', async () => {
    await withServer({ PANTHERS_RATE_LIMITS: 'auth=2' }, async (server) => {
      const w = newEvmWallet();
      assignNft(server, '10', w.address);
      const body = { wallet_address: w.address, nft_token_id: '10' };
      // Limits use fixed one-minute windows: keep the three calls below inside one window.
      const intoMinute = Date.now() % 60_000;
      if (intoMinute > 57_000) await new Promise((r) => setTimeout(r, 60_100 - intoMinute));
      const impatient = createClient({ baseUrl: server.url, maxRetryDelayMs: 0 });
      await impatient.auth.challenge(body);
      await impatient.auth.challenge(body);
      let retryAfter = 0;
      await assert.rejects(impatient.auth.challenge(body), (e: unknown) => {
        assert.ok(e instanceof PanthersError);
        assert.equal(e.code, 'RATE_LIMITED');
        assert.equal(e.status, 429);
        assert.ok(e.retryAfter !== undefined && e.retryAfter >= 0 && e.retryAfter <= 60);
        assert.equal(e.details.class, 'auth');
        retryAfter = e.retryAfter;
        return true;
      });

      const log: string[] = [];
      const slept: number[] = [];
      const patient = createClient({
        baseUrl: server.url, fetch: recordingFetch(log),
        sleep: (ms) => {
          slept.push(ms);
          return new Promise((r) => setTimeout(r, ms));
        },
      });
      const started = Date.now();
      const ch = await patient.auth.challenge(body);
      assert.match(ch.message, /Nonce: /);
      assert.deepEqual(log, ['POST /v1/auth/challenge 429', 'POST /v1/auth/challenge 200']);
      assert.equal(slept.length, 1);
      assert.ok(Math.abs(slept[0]! - retryAfter * 1000) <= 1000, `slept ${slept[0]} ms for Retry-After ${retryAfter}`);
      assert.ok(Date.now() - started >= slept[0]!);
    });
  });

  it('parses SSE bodies split anywhere, with CRLF, comments and multi-line data', async () => {
    const text = ':\r\n\r\ndata: {"a":1}\r\n\r\ndata: line1\ndata: line2\n\n: note\ndata:x\n\n';
    const bytes = new TextEncoder().encode(text);
    for (const step of [1, 3, 7, bytes.length]) {
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < bytes.length; i += step) c.enqueue(bytes.slice(i, i + step));
          c.close();
        },
      });
      const out: string[] = [];
      for await (const d of sseData(body)) out.push(d);
      assert.deepEqual(out, ['{"a":1}', 'line1\nline2', 'x'], `step ${step}`);
    }
  });
});
