import type { ApiError } from '../../src/errors.js';
import type { ModelBackend, ModelEvent, ModelRequest } from '../../src/models/model-backend.js';
import { redactSecrets, unavailable, upstreamErrorMessage } from './backend-errors.js';
import { estimatedUsage } from './estimated-usage.js';
import { SseParser } from './sse-parser.js';
import { postLines } from './streaming-post.js';

export interface OpenAIBackendOptions {
  /** e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1 (vLLM, llama.cpp, LM Studio) */
  baseUrl: string;
  apiKey?: string;
  model: string;
  /** idle timeout: longest wait for the first byte and for each next chunk */
  timeoutMs: number;
  /** the request field that carries the output cap (default max_tokens) */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
}

type Usage = Extract<ModelEvent, { type: 'usage' }>;

/**
 * Any OpenAI-compatible server: `POST {baseUrl}/chat/completions` streamed as server-sent
 * events. Ends with one usage event: the server's counts (asked for with
 * stream_options.include_usage), or an estimate when it sends none.
 */
export class OpenAIBackend implements ModelBackend {
  readonly name = 'openai' as const;
  readonly defaultModel: string;
  private readonly url: string;

  constructor(private readonly opts: OpenAIBackendOptions) {
    this.defaultModel = opts.model;
    this.url = `${opts.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  }

  async *stream(request: ModelRequest): AsyncGenerator<ModelEvent, void, undefined> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    const lines = postLines({
      backend: 'openai',
      url: this.url,
      headers,
      body: {
        model: request.model ?? this.defaultModel,
        messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
        stream: true,
        stream_options: { include_usage: true },
        // `max_tokens` is what vLLM, llama.cpp's server and LM Studio read; OpenAI itself wants
        // `max_completion_tokens` (PANTHERS_OPENAI_MAX_TOKENS_FIELD, chosen by the base URL).
        ...(request.maxTokens !== undefined ? { [this.opts.maxTokensField ?? 'max_tokens']: request.maxTokens } : {}),
      },
      timeoutMs: this.opts.timeoutMs,
      signal: request.signal,
      secrets: [this.opts.apiKey],
    });

    const sse = new SseParser();
    let reply = '';
    let usage: Usage | undefined;
    let finished = false;
    let truncated = false;
    // One SSE event's data: returns the text it carries; notes usage and the end marker.
    const take = (data: string): string => {
      if (data === '[DONE]') {
        finished = true;
        return '';
      }
      const event = parseEvent(data);
      // OpenAI and most servers: {"error": {...}}; vLLM: {"object": "error", "message": ...}
      if (event.error || event.object === 'error') throw this.streamError(event);
      if (event.usage && typeof event.usage.prompt_tokens === 'number') {
        usage = { type: 'usage', promptTokens: event.usage.prompt_tokens, completionTokens: event.usage.completion_tokens ?? 0 };
      }
      const choice = Array.isArray(event.choices) ? event.choices.find((c) => (c?.index ?? 0) === 0) : undefined;
      if (choice?.finish_reason === 'length') truncated = true;
      const content = choice?.delta?.content;
      return typeof content === 'string' ? content : '';
    };

    for await (const line of lines) {
      // llama.cpp's server reports a failure as an `error:` field instead of `data:`.
      if (line.startsWith('error:')) throw this.streamError(parseJson(line.slice(6)));
      const data = sse.push(line);
      if (data === undefined) continue;
      const content = take(data);
      if (content) {
        reply += content;
        yield { type: 'delta', content };
      }
      if (finished) break;
    }
    if (request.signal.aborted) return;
    if (!finished) {
      // The body ended; a last event may lack its blank line.
      const data = sse.flush();
      const content = data === undefined ? '' : take(data);
      if (content) {
        reply += content;
        yield { type: 'delta', content };
      }
      if (!finished) throw unavailable('openai', 'the stream ended before [DONE]');
    }
    const u = usage ?? estimatedUsage(request.messages, reply);
    yield truncated ? { ...u, truncated } : u;
  }

  private streamError(event: unknown): ApiError {
    return unavailable('openai', redactSecrets(upstreamErrorMessage(event) ?? 'error in stream', [this.opts.apiKey]));
  }
}

interface ChunkEvent {
  error?: unknown;
  object?: unknown;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  choices?: { index?: number; delta?: { content?: string | null }; finish_reason?: string | null }[];
}

function parseEvent(data: string): ChunkEvent {
  const v = parseJson(data);
  if (v && typeof v === 'object') return v as ChunkEvent;
  throw unavailable('openai', 'malformed stream event');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
