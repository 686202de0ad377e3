/**
 * A language model behind a small interface. Implementations live in adapters/models
 * (scripted, openai, ollama) and all run one contract suite (test/model-contract.ts).
 */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export type ModelEvent =
  | { type: 'delta'; content: string }
  | { type: 'usage'; promptTokens: number; completionTokens: number };

export interface ModelRequest {
  messages: ChatMessage[];
  /** model name for backends that serve several */
  model?: string;
  signal: AbortSignal;
}

export interface ModelBackend {
  readonly name: 'scripted' | 'openai' | 'ollama';
  readonly defaultModel: string;
  /**
   * Streams the reply. Throws ApiError TIMEOUT when the backend stalls past its timeout and
   * ApiError SERVICE_UNAVAILABLE when it is down or answers an error (also mid-stream). Stops
   * (and releases the connection) when request.signal aborts.
   */
  stream(request: ModelRequest): AsyncIterable<ModelEvent>;
}

/** Rough token count (about 4 characters a token) for budgets when a backend reports no usage. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
