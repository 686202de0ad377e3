import type { TurnAbort } from './turn-abort.js';

/**
 * A language model behind a small interface. Implementations live in adapters/models
 * (scripted, openai, ollama) and all run one contract suite (test/helpers/model-contract.ts).
 */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export type ModelEvent =
  | { type: 'delta'; content: string }
  | {
      type: 'usage'; promptTokens: number; completionTokens: number;
      /** the reply stopped at maxTokens rather than where the model ended it */
      truncated?: boolean;
    };

export interface ModelRequest {
  messages: ChatMessage[];
  /** model name for backends that serve several */
  model?: string;
  /**
   * The most output tokens the reply may have (PANTHERS_MODEL_MAX_TOKENS, or less when the caller
   * asks): sent to the server as its own limit (OpenAI-compatible `max_tokens`, Ollama
   * `options.num_predict`), so spend stops there and not only in our accounting.
   */
  maxTokens?: number;
  /** who the turn is for (the NFT): backends with a shared pool serve tenants fairly */
  tenant?: string;
  signal: AbortSignal;
}

/** A request for a backend's push form: its abort comes as a TurnAbort beside it. */
export type ModelPumpRequest = Omit<ModelRequest, 'signal'>;

export interface ModelBackend {
  readonly name: 'scripted' | 'openai' | 'ollama' | 'llama';
  readonly defaultModel: string;
  /**
   * Streams the reply: non-empty deltas, then exactly one usage event, last (the server's
   * counts, or estimateTokens when it reports none). Throws ApiError TIMEOUT when the backend
   * stalls past its idle timeout (no first byte, or no next chunk) and ApiError
   * SERVICE_UNAVAILABLE when it is down or answers an error (also mid-stream, possibly after
   * some deltas). When request.signal aborts, the iteration ENDS WITHOUT AN ERROR and without
   * a usage event, and the connection is released; the caller checks signal.aborted to tell an
   * aborted (incomplete) turn from a finished one. A consumer that stops iterating early
   * (break) releases the connection too.
   */
  stream(request: ModelRequest): AsyncIterable<ModelEvent>;
  /**
   * Optional push form of stream(), the same contract: calls onDelta with each non-empty delta
   * (a returned promise pauses the reply until it settles) and resolves with the usage event,
   * or with undefined, at once, when `abort` aborts it (a TurnAbort: no AbortSignal per turn).
   * For backends that produce tokens from a timer or a socket callback: no async-iterator step
   * per token (src/models/model-pump.ts).
   */
  pump?(request: ModelPumpRequest, onDelta: (content: string) => void | Promise<void>, abort: TurnAbort): Promise<Extract<ModelEvent, { type: 'usage' }> | undefined>;
}

/** Rough token count (about 4 characters a token) for budgets when a backend reports no usage. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
