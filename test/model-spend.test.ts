import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { startServer, spawnCli, tempDir, request, waitFor, CLI, type TestServer } from './helpers/server.js';
import type { AppOptions } from '../src/app.js';
import { DB_FILE } from '../src/db/database.js';
import { signIn, newEvmWallet, type SignedIn } from './helpers/wallets.js';
import { startFakeOpenAI, type FakeLlm } from './fakes/openai-server.js';
import { startFakeOllama } from './fakes/ollama-server.js';
import { splitTokens } from '../adapters/models/scripted.js';
import { OpenAIBackend } from '../adapters/models/openai.js';
import { loadConfig } from '../src/config.js';

/** The real server; shedding on event-loop lag (not what these tests are about) is lifted, since
 * the shared machine's load would otherwise shed their first requests. */
function startUnshed(env: Record<string, string> = {}, opts: AppOptions = {}, dataDir?: string): Promise<TestServer> {
  return startServer({ PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '10000', ...env }, opts, dataDir);
}


/** Model spend under the operator's control, through the real server and real signatures. */

async function deploy(server: TestServer, nft: string, agent?: object): Promise<{ me: SignedIn; status: number; body: any }> {
  const me = await signIn(server, { nft });
  const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: nft, provider: 'local', agent } });
  if (r.status === 202) {
    await waitFor(async () => (await server.request('GET', `/v1/deployments/${nft}`, { token: me.access_token })).body.status === 'running');
  }
  return { me, status: r.status, body: r.body };
}

function chat(server: TestServer, nft: string, token: string, message: string, conversationId?: string) {
  return server.request('POST', `/v1/agents/${nft}/chat`, { token, body: { message, ...(conversationId ? { conversation_id: conversationId } : {}) } });
}

describe('PANTHERS_MODELS_ALLOWED and the max_tokens cap', () => {
  let openai: FakeLlm;
  let ollama: FakeLlm;
  let server: TestServer;
  before(async () => {
    openai = await startFakeOpenAI();
    ollama = await startFakeOllama();
    server = await startUnshed({
      PANTHERS_OPENAI_BASE_URL: openai.url, PANTHERS_OLLAMA_URL: ollama.url, PANTHERS_OPENAI_MODEL: 'gpt-fake',
      PANTHERS_MODELS_ALLOWED: 'scripted,openai:gpt-fake,ollama:*', PANTHERS_MODEL_MAX_TOKENS: '4',
    });
  });
  after(async () => {
    await server.stop();
    await openai.close();
    await ollama.close();
  });

  test('a deployment naming a model off the list is 400 INVALID_FIELD listing what is allowed; listed ones deploy', async () => {
    const refused = await deploy(server, '1401', { model: 'openai:gpt-4o' });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.code, 'INVALID_FIELD');
    assert.equal(refused.body.error.details.field, 'agent.model');
    assert.equal(refused.body.error.details.model, 'openai:gpt-4o');
    assert.deepEqual(refused.body.error.details.allowed, ['scripted', 'openai:gpt-fake', 'ollama:*']);
    const bare = await deploy(server, '1402', { model: 'gpt-4o' }); // a bare name is the default backend's (scripted)
    assert.equal(bare.status, 400);
    assert.equal((await deploy(server, '1403', { model: 'openai' })).status, 202, 'the backend default gpt-fake is listed');
    assert.equal((await deploy(server, '1404', { model: 'ollama:anything' })).status, 202);
    assert.equal((await deploy(server, '1405')).status, 202, 'the server default (scripted) is listed');
  });

  test('every backend is sent the cap in its own field, and the reply stops there', async () => {
    const o = await deploy(server, '1410', { model: 'openai:gpt-fake' });
    const r1 = await chat(server, '1410', o.me.access_token, 'tell me a long story about panthers');
    assert.equal(r1.status, 200, r1.text);
    assert.equal(openai.requests.at(-1)!.body.max_tokens, 4);
    assert.equal(splitTokens(r1.body.response).length, 4);

    const l = await deploy(server, '1411', { model: 'ollama:llama3.2' });
    const r2 = await chat(server, '1411', l.me.access_token, 'tell me a long story about panthers');
    assert.equal(r2.status, 200, r2.text);
    assert.deepEqual(ollama.requests.at(-1)!.body.options, { num_predict: 4 });
    assert.equal(splitTokens(r2.body.response).length, 4);

    const s = await deploy(server, '1412');
    const r3 = await chat(server, '1412', s.me.access_token, 'tell me a long story about panthers');
    assert.equal(r3.status, 200, r3.text);
    assert.equal(splitTokens(r3.body.response).length, 4, 'the scripted model stops at the cap too');
  });
});

describe('the OpenAI cap field', () => {
  test('api.openai.com gets max_completion_tokens (its reasoning models refuse max_tokens), other servers max_tokens; settable', async () => {
    assert.equal(loadConfig({}).openai.maxTokensField, 'max_completion_tokens');
    assert.equal(loadConfig({ PANTHERS_OPENAI_BASE_URL: 'http://127.0.0.1:8000/v1' }).openai.maxTokensField, 'max_tokens');
    assert.equal(loadConfig({ PANTHERS_OPENAI_MAX_TOKENS_FIELD: 'max_tokens' }).openai.maxTokensField, 'max_tokens');
    assert.throws(() => loadConfig({ PANTHERS_OPENAI_MAX_TOKENS_FIELD: 'n_predict' }), /PANTHERS_OPENAI_MAX_TOKENS_FIELD/);
    const fake = await startFakeOpenAI();
    try {
      const backend = new OpenAIBackend({ baseUrl: fake.url, model: 'gpt-fake', timeoutMs: 5000, maxTokensField: 'max_completion_tokens' });
      let text = '';
      for await (const ev of backend.stream({ messages: [{ role: 'user', content: 'a long answer please' }], maxTokens: 3, signal: new AbortController().signal })) {
        if (ev.type === 'delta') text += ev.content;
      }
      const sent = fake.requests.at(-1)!.body;
      assert.equal(sent.max_completion_tokens, 3);
      assert.equal(sent.max_tokens, undefined);
      assert.equal(splitTokens(text).length, 3);
    } finally {
      await fake.close();
    }
  });
});

describe('quota reserved at admission, settled at the end', () => {
  test('concurrent turns against a quota: only those whose worst case fits pass; usage never passes the quota; GET /usage shows it', async () => {
    // Each turn holds system prompt + message + max_tokens (about 38 + 1 + 40); a 250 budget fits 3.
    const server = await startUnshed({ PANTHERS_CHAT_DAILY_TOKEN_QUOTA: '250', PANTHERS_MODEL_MAX_TOKENS: '40', PANTHERS_SCRIPTED_DELAY_MS: '15' });
    try {
      const { me } = await deploy(server, '1420');
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => chat(server, '1420', me.access_token, `hi ${i}`)));
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 429);
      assert.equal(ok.length, 3, results.map((r) => r.status).join(','));
      assert.equal(refused.length, 5);
      for (const r of refused) {
        assert.equal(r.body.error.code, 'QUOTA_EXCEEDED');
        assert.ok(r.body.error.details.reserved > 0, 'refused because the budget is held by turns in progress');
        assert.ok(Number(r.headers.get('retry-after')) >= 1);
      }
      const spent = ok.reduce((n, r) => n + r.body.tokens_used, 0);
      assert.ok(spent <= 250, `spent ${spent}`);
      const usage = await server.request('GET', '/v1/agents/1420/usage', { token: me.access_token });
      assert.equal(usage.status, 200, usage.text);
      assert.deepEqual({ ...usage.body, resets_at: undefined, day: undefined }, {
        nft_token_id: '1420', tokens_used: spent, tokens_reserved: 0, daily_quota: 250, remaining: 250 - spent, resets_at: undefined, day: undefined,
      });
      assert.ok(Date.parse(usage.body.resets_at) > Date.now());
    } finally {
      await server.stop();
    }
  });

  test('GET /usage is the owner\'s only: another NFT\'s token is 403, no token 401; it is in the OpenAPI document', async () => {
    const server = await startUnshed();
    try {
      const { me } = await deploy(server, '1430');
      assert.equal((await chat(server, '1430', me.access_token, 'count me')).status, 200);
      const mine = await server.request('GET', '/v1/agents/1430/usage', { token: me.access_token });
      assert.equal(mine.status, 200);
      assert.ok(mine.body.tokens_used > 0, 'counted without a quota too');
      assert.equal(mine.body.daily_quota, null);
      assert.equal(mine.body.remaining, null);
      const other = await signIn(server, { nft: '1431' });
      assert.equal((await server.request('GET', '/v1/agents/1430/usage', { token: other.access_token })).status, 403);
      assert.equal((await server.request('GET', '/v1/agents/1430/usage')).status, 401);
      const doc = (await server.request('GET', '/v1/openapi.json')).body;
      const usagePath = Object.keys(doc.paths).find((p) => p.endsWith('/usage'));
      assert.ok(usagePath, Object.keys(doc.paths).join(' '));
      const op = doc.paths[usagePath!].get;
      assert.ok(op.responses['200'] && op.responses['401'] && op.responses['403']);
    } finally {
      await server.stop();
    }
  });
});

describe('a standalone agent enforces the same limits', () => {
  test('`panthers agent` with a quota, a model list and a cap: its own sign-in, GET /usage, refusal past the quota', async () => {
    const dir = tempDir();
    const wallet = newEvmWallet();
    const owners = path.join(dir, 'owners.json');
    fs.writeFileSync(owners, JSON.stringify({ '1440': wallet.address }));
    const agent = await spawnCli(['agent'], {
      PANTHERS_AGENT_NFT: '1440', PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dir, PANTHERS_OWNERS_FILE: owners,
      PANTHERS_MODEL: 'scripted', PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '10000',
      PANTHERS_CHAT_DAILY_TOKEN_QUOTA: '200', PANTHERS_MODEL_MAX_TOKENS: '30', PANTHERS_MODELS_ALLOWED: 'scripted',
    });
    try {
      const ch = await request(agent.url, 'POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address } });
      assert.equal(ch.status, 200, ch.text);
      const vr = await request(agent.url, 'POST', '/v1/auth/verify', { body: { wallet_address: wallet.address, signature: await wallet.sign(ch.body.message), message: ch.body.message } });
      assert.equal(vr.status, 200, vr.text);
      const token = vr.body.access_token;
      const statuses: number[] = [];
      let used = 0;
      for (let i = 0; i < 6; i++) {
        const r = await request(agent.url, 'POST', '/v1/chat', { token, body: { message: `turn ${i} of a long talk` } });
        statuses.push(r.status);
        if (r.status === 200) {
          used += r.body.tokens_used;
          assert.ok(splitTokens(r.body.response).length <= 30);
        } else assert.equal(r.body.error.code, 'QUOTA_EXCEEDED');
      }
      assert.ok(statuses.includes(200) && statuses.at(-1) === 429, statuses.join(','));
      const usage = await request(agent.url, 'GET', '/v1/usage', { token });
      assert.equal(usage.status, 200, usage.text);
      assert.equal(usage.body.tokens_used, used);
      assert.equal(usage.body.daily_quota, 200);
      assert.ok(used <= 200);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    // The agent keeps its own hash-chained audit log of these calls.
    const db = new Database(path.join(dir, DB_FILE), { readonly: true });
    const routes = (db.prepare('SELECT route, status FROM audit_log ORDER BY id').all() as { route: string; status: number }[]).map((r) => `${r.route} ${r.status}`);
    db.close();
    assert.ok(routes.includes('/agents/:nft/chat 200') && routes.includes('/agents/:nft/chat 429') && routes.includes('/agents/:nft/usage 200'), routes.join(', '));
    const v = spawnSync(process.execPath, [CLI, 'audit', 'verify', '--data-dir', dir], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(v.status, 0, v.stderr);
  });

  test('a standalone agent whose model is off the list refuses the turn with 403', async () => {
    const dir = tempDir();
    const wallet = newEvmWallet();
    const owners = path.join(dir, 'owners.json');
    fs.writeFileSync(owners, JSON.stringify({ '1441': wallet.address }));
    const agent = await spawnCli(['agent'], {
      PANTHERS_AGENT_NFT: '1441', PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dir, PANTHERS_OWNERS_FILE: owners,
      PANTHERS_MODEL: 'scripted', PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '10000', PANTHERS_AGENT_MODEL: 'openai:gpt-4o', PANTHERS_MODELS_ALLOWED: 'scripted',
    });
    try {
      const ch = await request(agent.url, 'POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address } });
      const vr = await request(agent.url, 'POST', '/v1/auth/verify', { body: { wallet_address: wallet.address, signature: await wallet.sign(ch.body.message), message: ch.body.message } });
      const r = await request(agent.url, 'POST', '/v1/chat', { token: vr.body.access_token, body: { message: 'hi' } });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.body.error.code, 'FORBIDDEN');
      assert.equal(r.body.error.details.model, 'openai:gpt-4o');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });
});
