import type { ModelBackend, ModelEvent, ModelRequest } from '../../src/models/model-backend.js';
import { redactSecrets, unavailable } from './backend-errors.js';
import { estimatedUsage } from './estimated-usage.js';
import { postLines } from './streaming-post.js';

export interface OllamaBackendOptions {
  /** e.g. http://127.0.0.1:11434 */
  baseUrl: string;
  model: string;
  /** idle timeout: longest wait for the first byte and for each next line */
  timeoutMs: number;
}

/**
 * Ollama's native `POST {baseUrl}/api/chat`, streamed as NDJSON. The last object has
 * done: true with eval_count (output tokens) and prompt_eval_count; a count Ollama leaves out
 * (prompt_eval_count is omitted when the prompt was cached) is estimated.
 */
export class OllamaBackend implements ModelBackend {
  readonly name = 'ollama' as const;
  readonly defaultModel: string;
  private readonly url: string;

  constructor(private readonly opts: OllamaBackendOptions) {
    this.defaultModel = opts.model;
    this.url = `${opts.baseUrl.replace(/\/+$/, '')}/api/chat`;
  }

  async *stream(request: ModelRequest): AsyncGenerator<ModelEvent, void, undefined> {
    const lines = postLines({
      backend: 'ollama',
      url: this.url,
      headers: { accept: 'application/x-ndjson' },
      body: {
        model: request.model ?? this.defaultModel,
        messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
        stream: true,
        // Ollama's cap on generated tokens (docs/api.md: options.num_predict).
        ...(request.maxTokens !== undefined ? { options: { num_predict: request.maxTokens } } : {}),
      },
      timeoutMs: this.opts.timeoutMs,
      signal: request.signal,
      secrets: [],
    });

    let reply = '';
    for await (const line of lines) {
      if (line.trim() === '') continue;
      const obj = parseLine(line);
      if (obj.error !== undefined) {
        const message = typeof obj.error === 'string' ? obj.error : 'error in stream';
        throw unavailable('ollama', redactSecrets(message, []));
      }
      const content = obj.message?.content;
      if (typeof content === 'string' && content !== '') {
        reply += content;
        yield { type: 'delta', content };
      }
      if (obj.done === true) {
        const estimate = estimatedUsage(request.messages, reply);
        yield {
          type: 'usage',
          promptTokens: typeof obj.prompt_eval_count === 'number' ? obj.prompt_eval_count : estimate.promptTokens,
          completionTokens: typeof obj.eval_count === 'number' ? obj.eval_count : estimate.completionTokens,
          ...(obj.done_reason === 'length' ? { truncated: true } : {}),
        };
        return;
      }
    }
    if (request.signal.aborted) return;
    throw unavailable('ollama', 'the stream ended before the done message');
  }
}

interface ChatLine {
  error?: unknown;
  done?: boolean;
  done_reason?: string;
  message?: { content?: string };
  eval_count?: number;
  prompt_eval_count?: number;
}

function parseLine(line: string): ChatLine {
  try {
    const v: unknown = JSON.parse(line);
    if (v && typeof v === 'object') return v as ChatLine;
  } catch {
    // fall through
  }
  throw unavailable('ollama', 'malformed stream line');
}
