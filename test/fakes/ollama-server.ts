import {
  capTokens, countUsage, listenRecording, replyFor, sleep, wordChunks, writeBody,
  type FakeExchange, type FakeLlm, type FakeLlmOptions,
} from './openai-server.js';

export type { FakeLlm, FakeLlmOptions, FakeMode, RecordedRequest } from './openai-server.js';

/**
 * A fake Ollama server on 127.0.0.1 speaking the real wire format of `POST /api/chat`
 * (see shared/reference/model-streaming.md): NDJSON, one object per word, then a final
 * object with done: true, done_reason, eval_count, prompt_eval_count and durations.
 * Streams unless the request says `"stream": false`, like Ollama.
 */
export function startFakeOllama(opts: FakeLlmOptions = {}): Promise<FakeLlm> {
  return listenRecording(opts, '', async (x) => {
    const { req, res, record } = x;
    if (req.method !== 'POST' || record.path !== '/api/chat') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end('404 page not found');
    }
    const body = record.body;
    if (!body || typeof body.model !== 'string' || body.model === '') {
      return sendJson(x, 400, { error: 'model is required' });
    }
    const model: string = body.model;
    const mode = x.opts.mode ?? 'normal';
    if (mode === 'error-status' || (x.opts.models && !x.opts.models.includes(model))) {
      return sendJson(x, 404, { error: `model "${model}" not found, try pulling it first` });
    }
    if (mode === 'hang') return;

    // options.num_predict caps the output tokens (a word is a token here); done_reason says so.
    const { text: reply, capped } = capTokens(replyFor(x, (last) => `Hello from the fake Ollama server. You said: ${last}`), body.options?.num_predict);
    const usage = countUsage(x, reply);
    const final = (content: string): Record<string, unknown> => ({
      model, created_at: createdAt(), message: { role: 'assistant', content }, done: true, done_reason: capped ? 'length' : 'stop',
      total_duration: 4883583458, load_duration: 1334875, prompt_eval_count: usage.prompt,
      prompt_eval_duration: 342546000, eval_count: usage.completion, eval_duration: 4535599000,
    });
    if (body.stream === false) return sendJson(x, 200, final(reply));

    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.flushHeaders();
    if (mode === 'hang-headers') return;

    const eol = x.opts.crlf ? '\r\n' : '\n';
    const send = async (obj: unknown): Promise<void> => {
      await writeBody(x, JSON.stringify(obj) + eol);
      if (x.opts.chunkDelayMs) await sleep(x.opts.chunkDelayMs);
    };
    const failAfter = x.opts.failAfterChunks ?? 2;
    let sent = 0;
    for (const word of wordChunks(reply)) {
      if (!x.open()) return;
      if (sent === failAfter && mode !== 'normal') break;
      await send({ model, created_at: createdAt(), message: { role: 'assistant', content: word }, done: false });
      sent++;
    }
    if (!x.open()) return;
    if (mode === 'fail-mid-stream') {
      // Crash a moment later (at once, the client could drop the chunks still queued).
      await sleep(30);
      return void req.socket.destroy();
    }
    if (mode === 'error-event') {
      await send({ error: 'an error was encountered while running the model: unexpected EOF' });
      return void res.end();
    }
    if (mode === 'truncated') return void res.end();
    await send(final(''));
    if (x.open()) res.end();
  });
}

function sendJson(x: FakeExchange, status: number, body: unknown): void {
  x.res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  x.res.end(JSON.stringify(body));
}

/** Fixed, so answers are the same every run. */
function createdAt(): string {
  return '2023-08-04T08:52:19.385406455Z';
}
