import { randomUUID } from 'node:crypto';
import type { ApiError } from '../errors.js';

/**
 * The wire shapes of OpenAI's Chat Completions API that an agent's OpenAI-compatible endpoint
 * speaks: the completion object, the `chat.completion.chunk` SSE frames (ending in `[DONE]`) and
 * the error object. Checked against openai/openai-node (src/resources/chat/completions,
 * src/core/streaming.ts: a `data:` event whose JSON has `error` is thrown as an APIError) and
 * OpenAI's API reference.
 */

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function completionId(): string {
  return `chatcmpl-${randomUUID().replace(/-/g, '')}`;
}

export function completion(id: string, created: number, model: string, content: string, finishReason: 'stop' | 'length', usage: Usage): object {
  return {
    id, object: 'chat.completion', created, model, system_fingerprint: null,
    choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: finishReason }],
    usage,
  };
}

/** Renders the frames of one streamed completion; the constant parts are rendered once. */
export class ChunkWriter {
  private readonly head: string;
  private readonly tail: string;

  constructor(readonly id: string, readonly created: number, readonly model: string, private readonly includeUsage: boolean) {
    this.head = `{"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":null,"choices":[{"index":0,"delta":`;
    this.tail = includeUsage ? ',"usage":null}' : '}';
  }

  role(): string {
    return `${this.head}{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]${this.tail}`;
  }

  content(text: string): string {
    return `${this.head}{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]${this.tail}`;
  }

  finish(reason: 'stop' | 'length'): string {
    return `${this.head}{},"logprobs":null,"finish_reason":"${reason}"}]${this.tail}`;
  }

  /** With stream_options.include_usage: a last chunk with empty choices carries the usage. */
  usage(usage: Usage): string | undefined {
    if (!this.includeUsage) return undefined;
    return JSON.stringify({ id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, system_fingerprint: null, choices: [], usage });
  }
}

export const DONE = '[DONE]';

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  409: 'conflict_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
};

/** OpenAI's error object: { error: { message, type, param, code } }; our spec code goes in `code`. */
export function openaiError(err: ApiError): { error: { message: string; type: string; param: string | null; code: string } } {
  const field = err.details?.field;
  return {
    error: {
      message: err.message,
      type: ERROR_TYPES[err.status] ?? (err.status >= 500 ? 'server_error' : 'invalid_request_error'),
      param: typeof field === 'string' ? field : null,
      code: err.code.toLowerCase(),
    },
  };
}

/** The routed paths (under an agent) that answer in OpenAI's shapes. */
export function isOpenAiPath(path: string): boolean {
  return path.startsWith('/openai/');
}
