import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createModelBackends, OllamaBackend, OpenAIBackend, ScriptedBackend, scriptedReply } from '../adapters/models/index.js';
import { loadConfig } from '../src/config.js';
import { ApiError } from '../src/errors.js';
import type { ChatMessage, ModelBackend, ModelEvent } from '../src/models/model-backend.js';
import { pumpModel } from '../src/models/model-pump.js';
import { TurnAbort } from '../src/models/turn-abort.js';
import { startFakeOllama } from './fakes/ollama-server.js';
import { startFakeOpenAI, type FakeLlm, type FakeLlmOptions } from './fakes/openai-server.js';
import { collect, modelContract, type ContractSubject } from './helpers/model-contract.js';
import { startServer, waitFor } from './helpers/server.js';

const API_KEY = 'sk-test-Zq9vK3xP7mW2rT8yLs4N';
const USAGE = { prompt: 37, completion: 11 };

/** What the fakes answer in these tests: a pure function of the conversation. */
const fakeReply = (messages: { role: string; content: string }[]): string => {
  const last = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  return `Fake 🐆 reply (${messages.length} messages) to: ${last}`;
};

function ask(text: string): ChatMessage[] {
  return [{ role: 'user', content: text }];
}

/** `apiKey: null` = no key configured */
function openaiBackend(fake: FakeLlm, timeoutMs = 5000, apiKey: string | null = API_KEY): OpenAIBackend {
  return new OpenAIBackend({ baseUrl: fake.url, apiKey: apiKey ?? undefined, model: 'gpt-fake', timeoutMs });
}

function ollamaBackend(fake: FakeLlm, timeoutMs = 5000): OllamaBackend {
  return new OllamaBackend({ baseUrl: fake.url, model: 'llama-fake', timeoutMs });
}

/** Runs a stream to its end and returns what arrived and the error it threw. */
async function failure(backend: ModelBackend, messages = ask('Tell me a long story please'), signal = new AbortController().signal) {
  const deltas: string[] = [];
  const started = performance.now();
  try {
    for await (const e of backend.stream({ messages, signal })) if (e.type === 'delta') deltas.push(e.content);
  } catch (e) {
    return { error: e as ApiError, deltas, ms: performance.now() - started };
  }
  return { error: undefined, deltas, ms: performance.now() - started };
}

function assertApiError(e: unknown, code: string, backend: string): asserts e is ApiError {
  assert.ok(e instanceof ApiError, `expected an ApiError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.equal(e.details.backend, backend);
  assert.match(e.message, new RegExp(backend));
  const leaked = JSON.stringify({ message: e.message, details: e.details, stack: e.stack });
  assert.ok(!leaked.includes(API_KEY), `the API key leaked: ${leaked}`);
  assert.ok(!leaked.includes(API_KEY.slice(3)), 'part of the API key leaked');
}

// ---------- the contract, for every backend ----------

const tokenEstimate = (messages: ChatMessage[]): number => messages.reduce((n, m) => n + Math.max(1, Math.ceil(m.content.length / 4)), 0);

modelContract('scripted', ({ tokenDelayMs }): ContractSubject => ({
  backend: new ScriptedBackend({ delayMs: tokenDelayMs }),
  expectedReply: scriptedReply,
  expectedUsage: (messages) => ({
    promptTokens: tokenEstimate(messages),
    completionTokens: Math.ceil(scriptedReply(messages).length / 4),
  }),
}));

/**
 * The scripted model's push form (pump, what the chat path runs) under the same contract: its
 * deltas and usage, re-read as a stream. Each delta waits for the consumer (as a backed-up
 * HTTP stream pauses the reply), so aborting or stopping mid-way behaves as with stream().
 */
function pumpedAsStream(backend: ScriptedBackend): ModelBackend {
  return {
    name: 'scripted',
    defaultModel: 'scripted',
    async *stream(request) {
      const queue: { content: string; taken: () => void }[] = [];
      let wake: (() => void) | undefined;
      let ended: { usage?: Extract<ModelEvent, { type: 'usage' }>; error?: unknown } | undefined;
      // The stream's signal, or the consumer stopping early, aborts the pump's TurnAbort.
      const abort = new TurnAbort();
      const unfollow = abort.follow(request.signal);
      const { signal: _signal, ...pumped } = request;
      void pumpModel(backend, pumped, abort, (content) => new Promise<void>((taken) => {
        queue.push({ content, taken });
        wake?.();
      })).then((usage) => (ended = { usage }), (error) => (ended = { error })).finally(() => wake?.());
      try {
        for (;;) {
          const next = queue.shift();
          if (next) {
            yield { type: 'delta' as const, content: next.content };
            next.taken();
            continue;
          }
          if (ended) {
            if (ended.error) throw ended.error;
            if (ended.usage) yield ended.usage;
            return;
          }
          await new Promise<void>((r) => (wake = r));
        }
      } finally {
        unfollow();
        abort.abort();
      }
    },
  };
}

modelContract('scripted (push form)', ({ tokenDelayMs }): ContractSubject => ({
  backend: pumpedAsStream(new ScriptedBackend({ delayMs: tokenDelayMs })),
  expectedReply: scriptedReply,
  expectedUsage: (messages) => ({
    promptTokens: tokenEstimate(messages),
    completionTokens: Math.ceil(scriptedReply(messages).length / 4),
  }),
}));

describe('scripted: the push form gives what stream() gives', () => {
  it('the same deltas and usage, also cut at maxTokens', async () => {
    const backend = new ScriptedBackend({ delayMs: 0 });
    for (const maxTokens of [undefined, 3, 1000]) {
      const request = { messages: ask('Tell me about the cut at three tokens'), maxTokens };
      const streamed = await collect(backend.stream({ ...request, signal: new AbortController().signal }));
      const pushed: string[] = [];
      const usage = await pumpModel(backend, request, new TurnAbort(), (c) => void pushed.push(c));
      assert.deepEqual(pushed, streamed.deltas);
      assert.deepEqual(usage, streamed.usage[0]);
      if (maxTokens === 3) assert.equal(usage?.truncated, true);
    }
  });
});

function fakeSubject(start: (o: FakeLlmOptions) => Promise<FakeLlm>, build: (f: FakeLlm) => ModelBackend, extra: FakeLlmOptions = {}) {
  return async ({ tokenDelayMs }: { tokenDelayMs: number }): Promise<ContractSubject> => {
    const fake = await start({ reply: fakeReply, usage: USAGE, chunkDelayMs: tokenDelayMs, ...extra });
    return {
      backend: build(fake),
      expectedReply: fakeReply,
      expectedUsage: () => ({ promptTokens: USAGE.prompt, completionTokens: USAGE.completion }),
      close: () => fake.close(),
    };
  };
}

modelContract('openai (fake OpenAI server)', fakeSubject(startFakeOpenAI, (f) => openaiBackend(f), { apiKey: API_KEY }));
modelContract('openai (CRLF, comment lines, 5-byte TCP fragments)', fakeSubject(startFakeOpenAI, (f) => openaiBackend(f), { crlf: true, fragmented: true }));
modelContract('ollama (fake Ollama server)', fakeSubject(startFakeOllama, (f) => ollamaBackend(f)));
modelContract('ollama (CRLF, 5-byte TCP fragments)', fakeSubject(startFakeOllama, (f) => ollamaBackend(f), { crlf: true, fragmented: true }));

// ---------- scripted ----------

describe('scripted backend', () => {
  it('reflects the last user message, counts the turns and says it is no real LLM', async () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: 'What is   a panther?' },
    ];
    const got = await collect(new ScriptedBackend({ delayMs: 0 }).stream({ messages, signal: new AbortController().signal }));
    assert.match(got.text, /You asked: "What is a panther\?"/);
    assert.match(got.text, /turn 2\b/);
    assert.match(got.text, /scripted model/);
    assert.match(got.text, /not a real LLM/);
    const other = await collect(new ScriptedBackend({ delayMs: 0 }).stream({ messages: ask('Hi'), signal: new AbortController().signal }));
    assert.match(other.text, /You said: "Hi"/);
    assert.match(other.text, /first turn/);
  });

  it('streams word-sized tokens that keep their spaces', async () => {
    const got = await collect(new ScriptedBackend({ delayMs: 0 }).stream({ messages: ask('one two three'), signal: new AbortController().signal }));
    for (const d of got.deltas.slice(0, -1)) assert.match(d, /^\S+\s+$/, JSON.stringify(d));
    assert.ok(got.deltas.length > 10);
  });

  it('with delay 0 uses no timers: the whole reply arrives before the next macrotask', async () => {
    let macrotaskRan = false;
    setImmediate(() => (macrotaskRan = true));
    const got = await collect(new ScriptedBackend({ delayMs: 0 }).stream({ messages: ask('quick'), signal: new AbortController().signal }));
    assert.equal(macrotaskRan, false);
    assert.equal(got.usage.length, 1);
  });

  it('waits the configured delay between tokens', async () => {
    const t0 = performance.now();
    const got = await collect(new ScriptedBackend({ delayMs: 15 }).stream({ messages: ask('pace'), signal: new AbortController().signal }));
    const ms = performance.now() - t0;
    assert.ok(ms >= (got.deltas.length - 1) * 15 * 0.9, `${got.deltas.length} tokens in ${ms.toFixed(0)} ms`);
  });

  it('ends at once when aborted during a long delay', async () => {
    const ac = new AbortController();
    const t0 = performance.now();
    const got = await collect(new ScriptedBackend({ delayMs: 60_000 }).stream({ messages: ask('slow'), signal: ac.signal }), () => {
      setTimeout(() => ac.abort(), 20);
    });
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(got.deltas.length, 1);
  });
});

// ---------- the real backends against their fakes: requests, failures, timeouts, aborts ----------

const remotes = [
  { name: 'openai', start: startFakeOpenAI, build: (f: FakeLlm, timeoutMs?: number) => openaiBackend(f, timeoutMs), upstream: /server had an error/ },
  { name: 'ollama', start: startFakeOllama, build: (f: FakeLlm, timeoutMs?: number) => ollamaBackend(f, timeoutMs), upstream: /model "llama-fake" not found/ },
] as const;

for (const r of remotes) {
  describe(`${r.name} backend failures and aborts`, () => {
    let fake: FakeLlm;
    before(async () => {
      fake = await r.start({ reply: 'one two three four five six seven eight nine ten' });
    });
    after(() => fake.close());
    const reset = (mode: Parameters<FakeLlm['setMode']>[0], opts: FakeLlmOptions = {}): void => {
      fake.set({ chunkDelayMs: 0, failAfterChunks: 2, ...opts });
      fake.setMode(mode);
    };

    it('a connection lost mid-stream is SERVICE_UNAVAILABLE after the first deltas', async () => {
      reset('fail-mid-stream');
      const { error, deltas } = await failure(r.build(fake));
      assertApiError(error, 'SERVICE_UNAVAILABLE', r.name);
      assert.deepEqual(deltas, ['one ', 'two ']);
    });

    it('an error status is SERVICE_UNAVAILABLE carrying the server message', async () => {
      reset('error-status');
      const { error, deltas } = await failure(r.build(fake));
      assertApiError(error, 'SERVICE_UNAVAILABLE', r.name);
      assert.equal(error.details.status, r.name === 'openai' ? 500 : 404);
      assert.match(error.message, r.upstream);
      assert.deepEqual(deltas, []);
    });

    it('an error object inside the stream is SERVICE_UNAVAILABLE', async () => {
      reset('error-event');
      const { error, deltas } = await failure(r.build(fake));
      assertApiError(error, 'SERVICE_UNAVAILABLE', r.name);
      assert.match(error.message, /crashed|error was encountered/);
      assert.equal(deltas.length, 2);
    });

    it('a body that ends without its end marker is SERVICE_UNAVAILABLE', async () => {
      reset('truncated');
      const { error, deltas } = await failure(r.build(fake));
      assertApiError(error, 'SERVICE_UNAVAILABLE', r.name);
      assert.match(error.message, /ended before/);
      assert.equal(deltas.length, 2);
    });

    for (const mode of ['hang', 'hang-headers'] as const) {
      it(`a server that ${mode === 'hang' ? 'sends nothing' : 'sends headers then nothing'} is TIMEOUT after the timeout`, async () => {
        reset(mode);
        const before = fake.requests.length;
        const { error, ms } = await failure(r.build(fake, 300));
        assertApiError(error, 'TIMEOUT', r.name);
        assert.equal(error.details.timeoutMs, 300);
        assert.ok(ms >= 280 && ms < 2000, `timed out after ${ms.toFixed(0)} ms`);
        assert.equal(fake.requests.length, before + 1);
        await waitFor(() => fake.requests.at(-1)!.closedEarly, 2000);
      });
    }

    it('the timeout is per chunk: a slow but steady stream completes', async () => {
      reset('normal', { chunkDelayMs: 100 });
      const t0 = performance.now();
      const got = await collect(r.build(fake, 300).stream({ messages: ask('slow'), signal: new AbortController().signal }));
      assert.ok(performance.now() - t0 > 600, 'the whole stream took longer than the timeout');
      assert.equal(got.text, 'one two three four five six seven eight nine ten');
    });

    it('a slow consumer does not count against the timeout', async () => {
      reset('normal');
      const got = await collect(r.build(fake, 150).stream({ messages: ask('x'), signal: new AbortController().signal }), async (i) => {
        if (i === 0) await new Promise((resolve) => setTimeout(resolve, 400));
      });
      assert.equal(got.text, 'one two three four five six seven eight nine ten');
      assert.equal(got.usage.length, 1);
    });

    it('an abort mid-stream ends the iteration cleanly and closes the connection', async () => {
      reset('normal', { chunkDelayMs: 50 });
      const ac = new AbortController();
      const before = fake.requests.length;
      const got = await collect(r.build(fake).stream({ messages: ask('abort me'), signal: ac.signal }), () => ac.abort());
      assert.equal(got.deltas.length, 1);
      assert.equal(got.usage.length, 0);
      const req = fake.requests[before];
      await waitFor(() => req.closedEarly, 2000);
      assert.equal(req.finished, false);
    });

    it('a consumer that stops reading early releases the connection', async () => {
      reset('normal', { chunkDelayMs: 50 });
      const before = fake.requests.length;
      const got = await collect(r.build(fake).stream({ messages: ask('just one'), signal: new AbortController().signal }), () => 'stop');
      assert.equal(got.deltas.length, 1);
      await waitFor(() => fake.requests[before]?.closedEarly, 2000);
      assert.equal(fake.requests[before].finished, false);
    });

    it('an abort while waiting for the first byte ends cleanly and closes the connection', async () => {
      reset('hang');
      const ac = new AbortController();
      const before = fake.requests.length;
      setTimeout(() => ac.abort(), 100);
      const { error, deltas, ms } = await failure(r.build(fake, 10_000), ask('x'), ac.signal);
      assert.equal(error, undefined);
      assert.deepEqual(deltas, []);
      assert.ok(ms < 1000);
      await waitFor(() => fake.requests[before]?.closedEarly, 2000);
    });

    it('a server that is down is SERVICE_UNAVAILABLE (connection refused)', async () => {
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const { port } = closed.address() as AddressInfo;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const down = r.name === 'openai'
        ? new OpenAIBackend({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: API_KEY, model: 'm', timeoutMs: 5000 })
        : new OllamaBackend({ baseUrl: `http://127.0.0.1:${port}`, model: 'm', timeoutMs: 5000 });
      const { error, ms } = await failure(down);
      assertApiError(error, 'SERVICE_UNAVAILABLE', r.name);
      assert.match(error.message, /connection refused/);
      assert.ok(ms < 2000);
    });
  });
}

describe('what the real backends send', () => {
  it('openai: POST /v1/chat/completions with the model, messages, stream flags and the bearer key', async () => {
    const fake = await startFakeOpenAI({ apiKey: API_KEY });
    try {
      const messages: ChatMessage[] = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }];
      await collect(openaiBackend(fake).stream({ messages, signal: new AbortController().signal }));
      await collect(openaiBackend(fake).stream({ messages, model: 'other-model', signal: new AbortController().signal }));
      const [a, b] = fake.requests;
      assert.equal(a.method, 'POST');
      assert.equal(a.path, '/v1/chat/completions');
      assert.equal(a.headers.authorization, `Bearer ${API_KEY}`);
      assert.match(String(a.headers['content-type']), /application\/json/);
      assert.deepEqual(a.body, { model: 'gpt-fake', messages, stream: true, stream_options: { include_usage: true } });
      assert.equal(b.body.model, 'other-model');
    } finally {
      await fake.close();
    }
  });

  it('openai: no Authorization header without a key; a rejected key never reaches the error', async () => {
    const fake = await startFakeOpenAI({ apiKey: 'sk-the-right-one' });
    try {
      const noKey = await failure(openaiBackend(fake, 5000, null));
      assert.equal(fake.requests[0].headers.authorization, undefined);
      assertApiError(noKey.error, 'SERVICE_UNAVAILABLE', 'openai');
      assert.equal(noKey.error.details.status, 401);
      // The fake echoes the wrong key in its 401 body, as some proxies do.
      const wrong = await failure(openaiBackend(fake, 5000, API_KEY));
      assertApiError(wrong.error, 'SERVICE_UNAVAILABLE', 'openai');
      assert.match(wrong.error.message, /Incorrect API key provided: \[redacted\]/);
    } finally {
      await fake.close();
    }
  });

  it('ollama: POST /api/chat with the model, messages and stream: true; usage from the done line', async () => {
    const fake = await startFakeOllama({ usage: { prompt: 26, completion: 282 } });
    try {
      const messages: ChatMessage[] = [{ role: 'user', content: 'why is the sky blue?' }];
      const got = await collect(ollamaBackend(fake).stream({ messages, signal: new AbortController().signal }));
      const [a] = fake.requests;
      assert.equal(a.path, '/api/chat');
      assert.deepEqual(a.body, { model: 'llama-fake', messages, stream: true });
      assert.deepEqual(got.usage, [{ type: 'usage', promptTokens: 26, completionTokens: 282 }]);
    } finally {
      await fake.close();
    }
  });

  it('ollama: a model the server lacks is SERVICE_UNAVAILABLE naming the model', async () => {
    const fake = await startFakeOllama({ models: ['llama3.2'] });
    try {
      const { error } = await failure(ollamaBackend(fake));
      assertApiError(error, 'SERVICE_UNAVAILABLE', 'ollama');
      assert.match(error.message, /model "llama-fake" not found/);
    } finally {
      await fake.close();
    }
  });
});

/** A one-off SSE server that sends exactly `body` (for shapes of servers other than OpenAI). */
async function rawSse(body: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('openai backend with other servers\' stream shapes', () => {
  const chunk = (content: string) => `data: {"choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"finish_reason":null}]}\n\n`;

  it('estimates usage when the server reports none, and accepts [DONE] without a final blank line', async () => {
    const server = await rawSse(chunk('Hello ') + chunk('world') + 'data: [DONE]');
    try {
      const b = new OpenAIBackend({ baseUrl: server.url, model: 'm', timeoutMs: 2000 });
      const got = await collect(b.stream({ messages: ask('12345678'), signal: new AbortController().signal }));
      assert.equal(got.text, 'Hello world');
      assert.deepEqual(got.usage, [{ type: 'usage', promptTokens: 2, completionTokens: 3 }]);
    } finally {
      await server.close();
    }
  });

  it("reads vLLM's error object and llama.cpp's error field as SERVICE_UNAVAILABLE", async () => {
    const shapes = [
      ['data: {"object":"error","message":"vLLM ran out of KV cache","type":"BadRequestError","code":400}\n\n', /KV cache/],
      ['error: {"code":500,"message":"llama.cpp context overflow","type":"server_error"}\n\n', /context overflow/],
    ] as const;
    for (const [tail, message] of shapes) {
      const server = await rawSse(chunk('partial ') + tail);
      try {
        const b = new OpenAIBackend({ baseUrl: server.url, model: 'm', timeoutMs: 2000 });
        const { error, deltas } = await failure(b);
        assertApiError(error, 'SERVICE_UNAVAILABLE', 'openai');
        assert.match(error.message, message);
        assert.ok(deltas.length <= 1);
      } finally {
        await server.close();
      }
    }
  });
});

describe('wiring', () => {
  it('createModelBackends builds all four from the configuration', () => {
    const config = loadConfig({
      PANTHERS_SCRIPTED_DELAY_MS: '0',
      PANTHERS_OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
      PANTHERS_OPENAI_MODEL: 'my-model',
      PANTHERS_OLLAMA_MODEL: 'my-llama',
    });
    const backends = createModelBackends(config);
    assert.deepEqual([...backends.keys()].sort(), ['llama', 'ollama', 'openai', 'scripted']);
    for (const [name, b] of backends) assert.equal(b.name, name);
    assert.equal(backends.get('openai')!.defaultModel, 'my-model');
    assert.equal(backends.get('ollama')!.defaultModel, 'my-llama');
  });

  it('the server registers the backends (models feature)', async () => {
    const server = await startServer({ PANTHERS_SCRIPTED_DELAY_MS: '0' });
    try {
      for (const name of ['scripted', 'openai', 'ollama']) assert.equal(server.app.ctx.model(name)?.name, name);
      const got = await collect(server.app.ctx.model('scripted')!.stream({ messages: ask('wired?'), signal: new AbortController().signal }));
      assert.match(got.text, /You asked: "wired\?"/);
    } finally {
      await server.stop();
    }
  });
});
