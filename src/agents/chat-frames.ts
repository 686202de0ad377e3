import type { ApiError } from '../errors.js';

/** The WS topic of one conversation's chunks. */
export function chatTopic(conversationId: string): string {
  return `chat:${conversationId}`;
}

/**
 * Pre-renders the constant part of a conversation's `chat_chunk` frames once per turn, so each
 * chunk costs one JSON.stringify of its text (pino's habit: render the constant parts once).
 */
export class ChunkFrames {
  private readonly prefix: string;

  constructor(readonly conversationId: string, nft: string) {
    this.prefix = `{"type":"chat_chunk","conversation_id":${JSON.stringify(conversationId)},"nft_token_id":${JSON.stringify(nft)},"done":false,"content":`;
  }

  chunk(content: string): string {
    return this.prefix + JSON.stringify(content) + '}';
  }

  last(result: { response: string; timestamp: string; tokens_used: number; incomplete: boolean; error?: ApiError }): string {
    return JSON.stringify({
      type: 'chat_chunk',
      conversation_id: this.conversationId,
      content: '',
      done: true,
      response: result.response,
      timestamp: result.timestamp,
      tokens_used: result.tokens_used,
      incomplete: result.incomplete,
      ...(result.error ? { error: { code: result.error.code, message: result.error.message, details: result.error.details } } : {}),
    });
  }
}

/** SSE `data:` payloads: one per chunk, then the final object with done: true. */
export function sseChunk(content: string): string {
  return '{"content":' + JSON.stringify(content) + ',"done":false}';
}
