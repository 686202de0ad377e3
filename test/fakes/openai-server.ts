import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake OpenAI-compatible server on 127.0.0.1 speaking the real wire format of
 * `POST /v1/chat/completions` (see shared/reference/model-streaming.md): with `stream: true`
 * an SSE body of a role chunk, one chunk per word, a finish_reason chunk, a usage chunk with
 * empty choices (when stream_options.include_usage is set) and `data: [DONE]`.
 * It records every request and can misbehave in the ways real servers do (FakeMode).
 * The small server plumbing at the top is shared with the fake Ollama server.
 */

/** How a fake LLM server answers the next requests. */
export type FakeMode =
  /** a complete, well-formed answer */
  | 'normal'
  /** some chunks (failAfterChunks), then the socket is destroyed */
  | 'fail-mid-stream'
  /** an error status with the server's error JSON (OpenAI: 500; Ollama: 404 model not found) */
  | 'error-status'
  /** some chunks, then an error object in the stream, then the body ends */
  | 'error-event'
  /** some chunks, then the body ends cleanly without the end marker ([DONE] / done:true) */
  | 'truncated'
  /** 200 and headers, then nothing */
  | 'hang-headers'
  /** reads the request and sends nothing at all */
  | 'hang';

export interface FakeLlmOptions {
  mode?: FakeMode;
  /** the reply text (default: a sentence that quotes the last user message) */
  reply?: string | ((messages: { role: string; content: string }[]) => string);
  /** pause between chunks (default 0) */
  chunkDelayMs?: number;
  /** content chunks sent before a failure mode strikes (default 2) */
  failAfterChunks?: number;
  /** write the body in small fragments (splitting lines and UTF-8 characters across TCP reads) */
  fragmented?: boolean;
  /** CRLF line endings (OpenAI fake: also SSE comment lines, as proxies add them) */
  crlf?: boolean;
  /** the token counts reported at the end (default: estimated from the texts) */
  usage?: { prompt: number; completion: number };
  /** OpenAI fake: requests must carry `Authorization: Bearer <apiKey>`; others get a 401 that echoes the key sent */
  apiKey?: string;
  /** Ollama fake: the models it has; any other gets 404 (default: any model) */
  models?: string[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** the parsed JSON body (undefined when it was not JSON) */
  body: any;
  /** true once the response finished normally */
  finished: boolean;
  /** true when the connection closed before the response finished (a client abort, or a failure mode) */
  closedEarly: boolean;
}

export interface FakeLlm {
  /** base URL for the backend config (OpenAI fake: ends in /v1) */
  url: string;
  requests: RecordedRequest[];
  setMode(mode: FakeMode): void;
  /** changes options for the next requests */
  set(opts: Partial<FakeLlmOptions>): void;
  close(): Promise<void>;
}

export interface FakeExchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  record: RecordedRequest;
  opts: FakeLlmOptions;
  /** false once the client went away: stop writing */
  open(): boolean;
}

/** Starts a node:http server on 127.0.0.1:0 that records requests and hands them to `answer`. */
export async function listenRecording(
  initial: FakeLlmOptions,
  basePath: string,
  answer: (x: FakeExchange) => Promise<void>,
): Promise<FakeLlm> {
  const opts: FakeLlmOptions = { mode: 'normal', ...initial };
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      const record: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        finished: false,
        closedEarly: false,
      };
      requests.push(record);
      res.on('finish', () => (record.finished = true));
      res.on('close', () => {
        if (!res.writableFinished) record.closedEarly = true;
      });
      const open = (): boolean => !res.destroyed && !res.writableEnded;
      answer({ req, res, record, opts: { ...opts }, open }).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${basePath}`,
    requests,
    setMode: (mode) => void (opts.mode = mode),
    set: (patch) => void Object.assign(opts, patch),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Word-sized pieces that join back to the text. */
/** The reply cut to `limit` word tokens when the request set a limit (max_tokens, num_predict). */
export function capTokens(text: string, limit: unknown): { text: string; capped: boolean } {
  if (typeof limit !== 'number' || limit < 0) return { text, capped: false };
  const words = wordChunks(text);
  if (words.length <= limit) return { text, capped: false };
  return { text: words.slice(0, limit).join(''), capped: true };
}

export function wordChunks(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes text, in fragments of a few bytes with a macrotask between when asked. */
export async function writeBody(x: FakeExchange, text: string): Promise<void> {
  if (!x.open()) return;
  if (!x.opts.fragmented) {
    x.res.write(text);
    return;
  }
  // 5-byte pieces split lines, JSON and multi-byte characters; the macrotask between writes
  // lets the client read each piece on its own.
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length && x.open(); i += 5) {
    x.res.write(bytes.subarray(i, i + 5));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export function lastUserMessage(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: unknown; content?: unknown };
    if (m?.role === 'user' && typeof m.content === 'string') return m.content;
  }
  return '';
}

export function replyFor(x: FakeExchange, fallback: (last: string) => string): string {
  const messages = Array.isArray(x.record.body?.messages) ? x.record.body.messages : [];
  const r = x.opts.reply;
  if (typeof r === 'function') return r(messages);
  return r ?? fallback(lastUserMessage(messages));
}

export function countUsage(x: FakeExchange, reply: string): { prompt: number; completion: number } {
  if (x.opts.usage) return x.opts.usage;
  const messages: { content?: unknown }[] = Array.isArray(x.record.body?.messages) ? x.record.body.messages : [];
  let prompt = 0;
  for (const m of messages) prompt += Math.ceil(String(m.content ?? '').length / 4) + 4;
  return { prompt, completion: wordChunks(reply).length };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function openAiError(message: string, type: string, code: string | null): unknown {
  return { error: { message, type, param: null, code } };
}

const CREATED = 1711368332;
let completionSeq = 0;

/** Starts the fake OpenAI-compatible server; its `url` ends in /v1. */
export function startFakeOpenAI(opts: FakeLlmOptions = {}): Promise<FakeLlm> {
  return listenRecording(opts, '/v1', async (x) => {
    const { req, res, record } = x;
    if (req.method !== 'POST' || record.path !== '/v1/chat/completions') {
      return sendJson(res, 404, openAiError(`Unknown request URL: ${req.method} ${record.path}.`, 'invalid_request_error', 'unknown_url'));
    }
    if (x.opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${x.opts.apiKey}`) {
      // Like many proxies, echo the key that was rejected: the client must never pass it on.
      const sent = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      return sendJson(res, 401, openAiError(`Incorrect API key provided: ${sent}.`, 'invalid_request_error', 'invalid_api_key'));
    }
    const body = record.body;
    if (!body || typeof body.model !== 'string' || !Array.isArray(body.messages)) {
      return sendJson(res, 400, openAiError("'model' and 'messages' are required", 'invalid_request_error', null));
    }
    const mode = x.opts.mode ?? 'normal';
    if (mode === 'hang') return;
    if (mode === 'error-status') {
      return sendJson(res, 500, openAiError('The server had an error while processing your request. Sorry about that!', 'server_error', null));
    }

    const id = `chatcmpl-fake${++completionSeq}`;
    const model: string = body.model;
    // max_tokens caps the output tokens (a word is a token here); finish_reason says so.
    // OpenAI reads max_completion_tokens (max_tokens is its deprecated alias); both are honoured.
    const { text: reply, capped } = capTokens(replyFor(x, (last) => `Hello from the fake OpenAI server. You said: ${last}`), body.max_completion_tokens ?? body.max_tokens);
    const finish = capped ? 'length' : 'stop';
    const usage = countUsage(x, reply);
    if (body.stream !== true) {
      return sendJson(res, 200, {
        id, object: 'chat.completion', created: CREATED, model,
        choices: [{ index: 0, message: { role: 'assistant', content: reply }, logprobs: null, finish_reason: finish }],
        usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion },
      });
    }

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    if (mode === 'hang-headers') return;

    const includeUsage = body.stream_options?.include_usage === true;
    const eol = x.opts.crlf ? '\r\n' : '\n';
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      id, object: 'chat.completion.chunk', created: CREATED, model, system_fingerprint: 'fp_fake', choices,
      ...(includeUsage ? { usage: null } : {}), ...extra,
    });
    const send = async (data: unknown): Promise<void> => {
      const comment = x.opts.crlf ? `: keep-alive${eol}${eol}` : '';
      await writeBody(x, `${comment}data: ${typeof data === 'string' ? data : JSON.stringify(data)}${eol}${eol}`);
      if (x.opts.chunkDelayMs) await sleep(x.opts.chunkDelayMs);
    };

    await send(chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]));
    const failAfter = x.opts.failAfterChunks ?? 2;
    let sent = 0;
    for (const word of wordChunks(reply)) {
      if (!x.open()) return;
      if (sent === failAfter && mode !== 'normal') break;
      await send(chunk([{ index: 0, delta: { content: word }, logprobs: null, finish_reason: null }]));
      sent++;
    }
    if (!x.open()) return;
    if (mode === 'fail-mid-stream') {
      // Crash a moment later (at once, the client could drop the chunks still queued).
      await sleep(30);
      return void req.socket.destroy();
    }
    if (mode === 'error-event') {
      await send({ error: { message: 'The model crashed while generating. Sorry about that!', type: 'server_error', param: null, code: null } });
      return void res.end();
    }
    if (mode === 'truncated') return void res.end();
    await send(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }]));
    if (includeUsage) {
      await send(chunk([], { usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion } }));
    }
    await send('[DONE]');
    if (x.open()) res.end();
  });
}
