import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import { modelContract, collect, ONE_TURN, THREE_TURNS, type ContractSubject } from './helpers/model-contract.js';
import { writeTinyLlamaGguf } from './helpers/tiny-gguf.js';
import { startServer, tempDir, waitFor, type TestServer } from './helpers/server.js';
import { signIn } from './helpers/wallets.js';
import { LlamaBackend, type LlamaBackendOptions } from '../adapters/models/llama.js';
import { installLlama, llamaInstalled, LLAMA_SETUP_COMMAND } from '../adapters/models/llama-package.js';
import { FairSlots } from '../adapters/models/fair-slots.js';
import type { ChatMessage } from '../src/models/model-backend.js';
import { loadConfig } from '../src/config.js';
import { createApp } from '../src/app.js';

/**
 * The embedded llama.cpp backend, for real: node-llama-cpp (pinned, installed into a cache
 * outside the checkout when missing: CI has the registry) runs a tiny llama-architecture GGUF
 * that this suite writes itself (random weights, a small vocabulary, ~0.5 MB). It proves
 * loading, streaming, abort, usage, the max_tokens cap, fair sharing of sequences and the idle
 * timeout without downloading any weights.
 */
const dir = tempDir('panthers-llama-');
const modelPath = path.join(dir, 'tiny.gguf');
writeTinyLlamaGguf(modelPath);
installLlama(process.env, 'pipe');

const OPTS: LlamaBackendOptions = { modelPath, contextSize: 1024, threads: 1, gpuLayers: 0, sequences: 4, temperature: 0, timeoutMs: 10_000 };
const MAX = 24;

/** The reply the backend gives (temperature 0: deterministic), read once per conversation. */
async function replies(b: LlamaBackend): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const m of [ONE_TURN, THREE_TURNS]) {
    const got = await collect(b.stream({ messages: m, maxTokens: MAX, signal: new AbortController().signal }));
    out.set(JSON.stringify(m), got.text);
  }
  return out;
}

/** The contract suite calls stream() without maxTokens: cap it here so a random model stops. */
class CappedLlama extends LlamaBackend {
  override stream(r: Parameters<LlamaBackend['stream']>[0]) {
    return super.stream({ ...r, maxTokens: r.maxTokens ?? MAX });
  }
}

const shared = new CappedLlama(OPTS);
let known: Map<string, string> | undefined;
modelContract('llama (node-llama-cpp, tiny GGUF)', async (): Promise<ContractSubject> => {
  known ??= await replies(shared);
  return { backend: shared, expectedReply: (m: ChatMessage[]) => known!.get(JSON.stringify(m)) ?? '' };
});

describe('llama backend', () => {
  after(() => shared.close());

  test('the package is installed where `npm run setup:llama` puts it', () => {
    assert.ok(llamaInstalled());
  });

  test('max_tokens: the reply stops there and says it was truncated; usage counts real tokens', async () => {
    const got = await collect(shared.stream({ messages: ONE_TURN, maxTokens: 5, signal: new AbortController().signal }));
    const u = got.usage[0]!;
    assert.equal(u.completionTokens, 5);
    assert.equal(u.truncated, true);
    assert.ok(u.promptTokens > 5, `prompt tokens ${u.promptTokens}`);
  });

  test('a missing package is a clear error naming the setup command', async () => {
    const b = new LlamaBackend({ ...OPTS, env: { ...process.env, PANTHERS_LLAMA_HOME: tempDir() } });
    await assert.rejects(collect(b.stream({ messages: ONE_TURN, signal: new AbortController().signal })),
      (e: any) => e.code === 'SERVICE_UNAVAILABLE' && e.message.includes(LLAMA_SETUP_COMMAND));
    const none = new LlamaBackend({ ...OPTS, modelPath: undefined });
    await assert.rejects(collect(none.stream({ messages: ONE_TURN, signal: new AbortController().signal })),
      (e: any) => e.code === 'SERVICE_UNAVAILABLE' && /PANTHERS_LLAMA_MODEL/.test(e.message));
  });

  test('sequences are shared fairly: a busy NFT does not starve another', async () => {
    const b = new LlamaBackend({ ...OPTS, sequences: 2 });
    try {
      const order: string[] = [];
      const run = (tenant: string, i: number) =>
        collect(b.stream({ messages: ONE_TURN, maxTokens: 40, tenant, signal: new AbortController().signal })).then(() => order.push(`${tenant}${i}`));
      // NFT a opens five turns at once, then NFT b one: b must not wait for all of a's.
      const all = [0, 1, 2, 3, 4].map((i) => run('a', i));
      all.push(run('b', 0));
      await Promise.all(all);
      assert.ok(order.indexOf('b0') < 4, `b finished at position ${order.indexOf('b0')}: ${order.join(' ')}`);
    } finally {
      await b.close();
    }
  });

  test('idle timeout: no free sequence within the timeout is a TIMEOUT, as for the other backends', async () => {
    const b = new LlamaBackend({ ...OPTS, sequences: 1, timeoutMs: 150 });
    try {
      const ac = new AbortController();
      const holder = b.stream({ messages: ONE_TURN, maxTokens: 1000, signal: ac.signal })[Symbol.asyncIterator]();
      await holder.next(); // holds the only sequence
      await assert.rejects(collect(b.stream({ messages: ONE_TURN, tenant: 'other', signal: new AbortController().signal })), (e: any) => e.code === 'TIMEOUT');
      ac.abort();
      await holder.return?.(undefined);
    } finally {
      await b.close();
    }
  });

  test('FairSlots: round-robin between tenants, at most half the slots per tenant', async () => {
    const s = new FairSlots(4);
    assert.equal(s.perTenant, 2);
    const a1 = await s.acquire('a');
    const a2 = await s.acquire('a');
    let a3Granted = false;
    const a3 = s.acquire('a').then((r) => ((a3Granted = true), r));
    const b1 = await s.acquire('b');
    await new Promise((r) => setImmediate(r));
    assert.equal(a3Granted, false, 'a is at its cap');
    a1();
    const r3 = await a3;
    assert.equal(s.available, 1);
    for (const r of [a2, r3, b1]) r();
    assert.equal(s.available, 4);
  });
});

describe('a server with the llama backend', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PANTHERS_MODEL: 'scripted', PANTHERS_LLAMA_MODEL: modelPath, PANTHERS_LLAMA_TEMPERATURE: '0', PANTHERS_MODEL_MAX_TOKENS: '16', PANTHERS_LLAMA_CONTEXT_SIZE: '1024', PANTHERS_LLAMA_THREADS: '1', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '60000' });
  });
  after(() => server?.stop());

  test('a deployment with agent.model "llama" chats through llama.cpp: the spec route answers, the OpenAI route streams with usage', async () => {
    const me = await signIn(server, { nft: '920' });
    const d = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '920', provider: 'local', agent: { model: 'llama' } } });
    assert.equal(d.status, 202, d.text);
    await waitFor(async () => (await server.request('GET', '/v1/deployments/920', { token: me.access_token })).body.status === 'running');
    const info = await server.request('GET', '/v1/agents/920/info');
    assert.equal(info.body.model, 'llama');
    const r = await server.request('POST', '/v1/agents/920/chat', { token: me.access_token, body: { message: 'hello panther' } });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.body.response.length > 0);
    assert.doesNotMatch(r.body.response, /scripted model/);
    const openai = new OpenAI({ baseURL: `${server.url}/v1/agents/920/openai/v1`, apiKey: me.access_token, maxRetries: 0 });
    const stream = await openai.chat.completions.create({ model: 'agent-920', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hello' }] });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const usage = chunks.at(-1)!.usage!;
    assert.equal(usage.completion_tokens, 16);
    assert.equal(chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason, 'length');
  });

  test('PANTHERS_MODEL=llama without the package or the model file stops the server at start, naming what to do', async () => {
    await assert.rejects(createApp(loadConfig({ PORT: '0', PANTHERS_DATA_DIR: tempDir(), PANTHERS_MODEL: 'llama' })), /PANTHERS_LLAMA_MODEL/);
  });
});
