import { randomUUID } from 'node:crypto';
import PQueue from 'p-queue';
import type { ActorKind, Behaviour } from './registry.js';
import { ApiError, toApiError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { Publisher } from '../src/server/ws-server.js';
import type { ConversationsRepo } from '../src/agents/conversations-repo.js';
import { estimateTokens, type ChatMessage, type ModelBackend } from '../src/models/model-backend.js';
import type { AgentSettings } from '../src/providers/provider.js';
import { chatTopic, ChunkFrames } from '../src/agents/chat-frames.js';

export const AGENT_ACTOR = 'agent';

export interface TurnResult {
  response: string;
  conversation_id: string;
  timestamp: string;
  tokens_used: number;
  incomplete: boolean;
  /** the reply stopped at the max_tokens cap */
  truncated?: boolean;
  prompt_tokens?: number;
  completion_tokens?: number;
  error?: ApiError;
}

/** Receives a turn's chunks as they stream (an SSE response). Returning a promise pauses the model. */
export interface TurnListener {
  onChunk(content: string): void | Promise<void>;
}

export interface TurnHandle {
  conversation_id: string;
  /** Settles when the reply is stored: resolves even when the turn failed (see result.error). */
  done: Promise<TurnResult>;
}

export type AgentMsg =
  | {
      type: 'turn'; wallet: string; conversationId?: string; message: string; signal?: AbortSignal; listener?: TurnListener;
      /** Called synchronously once the conversation id is known, before any chunk is published. */
      opened?(conversationId: string): void;
      /** asks for a shorter reply than the operator's cap */
      maxTokens?: number;
      /** conversationId names a conversation to open when it does not exist yet (OpenAI `user`) */
      createIfMissing?: boolean;
      /** earlier messages the caller sent, stored before this one when the conversation is new */
      prelude?: ChatMessage[];
    }
  | { type: 'clear'; wallet: string; conversationId: string }
  | { type: 'ping' }
  | { type: 'info' };

export interface AgentActorDeps {
  repo: ConversationsRepo;
  publisher: Publisher;
  log: Logger;
  now(): number;
  /** The agent's character (name, prompt, model, capabilities) for an NFT. */
  character(nft: string): AgentSettings;
  /** Resolves an agent's `model` setting to a backend and the model name to ask it for. */
  model(setting: string): { backend: ModelBackend; model: string };
  concurrency: number;
  historyTokenBudget: number;
  /** the operator's cap on reply tokens, sent to every backend (PANTHERS_MODEL_MAX_TOKENS) */
  maxTokens?: number;
  /** The per-NFT daily token budget: a turn holds its worst case from admission until it settles. */
  quota?: { reserve(nft: string, cost: number): { settle(tokens: number): void } };
  onTurn?(outcome: 'complete' | 'incomplete' | 'error'): void;
}

/**
 * One NFT's agent: owns its conversations. The mailbox orders what changes them (opening a
 * conversation, queueing a turn, clearing); the turns themselves stream outside the mailbox, one at
 * a time per conversation (a promise chain) and up to `concurrency` conversations at once (p-queue).
 * Chunks go to the conversation's WS topic and to the requesting HTTP stream, never through the
 * mailbox.
 */
class AgentBehaviour implements Behaviour<AgentMsg, unknown> {
  private readonly queue: PQueue;
  private readonly chains = new Map<string, Promise<unknown>>();
  private active = 0;

  constructor(private readonly nft: string, private readonly deps: AgentActorDeps) {
    this.queue = new PQueue({ concurrency: deps.concurrency });
  }

  busy(): boolean {
    return this.active > 0;
  }

  receive(msg: AgentMsg): unknown {
    switch (msg.type) {
      case 'turn':
        return this.turn(msg);
      case 'clear':
        return this.clear(msg.wallet, msg.conversationId);
      case 'ping':
        return 'pong';
      case 'info':
        return this.deps.character(this.nft);
    }
  }

  private turn(msg: Extract<AgentMsg, { type: 'turn' }>): TurnHandle {
    let id = msg.conversationId;
    let isNew = !id;
    if (id && msg.createIfMissing && !this.deps.repo.get(id)) isNew = true;
    else if (id) this.deps.repo.owned(id, this.nft, msg.wallet);
    id ??= randomUUID();
    const cap = this.deps.maxTokens;
    const maxTokens = msg.maxTokens !== undefined && cap !== undefined ? Math.min(msg.maxTokens, cap) : msg.maxTokens ?? cap;
    const prelude = isNew ? msg.prelude : undefined;
    // Admission holds the turn's worst case: the system prompt, what the model will read (a new
    // conversation: the message and any prelude; a continued one: up to the history budget) and
    // the output cap. Settled with the real count when the turn ends.
    let input = estimateTokens(msg.message);
    for (const m of prelude ?? []) input += estimateTokens(m.content);
    const hold = this.deps.quota?.reserve(this.nft, estimateTokens(this.deps.character(this.nft).system_prompt)
      + (isNew ? input : Math.max(input, this.deps.historyTokenBudget)) + (maxTokens ?? 0));
    if (isNew) {
      const now = this.deps.now();
      try {
        this.deps.repo.create({ id, nft_token_id: this.nft, wallet: msg.wallet.toLowerCase(), created_at: now, updated_at: now });
      } catch (e) {
        hold?.settle(0);
        throw e;
      }
    }
    const conversationId = id;
    msg.opened?.(conversationId);
    this.active++;
    const done = this.enqueue(conversationId, () => this.queue.add(() => this.runTurn(conversationId, isNew && !prelude?.length, msg.message, msg.signal, msg.listener, maxTokens, prelude, hold)) as Promise<TurnResult>)
      .finally(() => {
        this.active--;
        // A turn that ended before settling (it failed early) releases its hold.
        hold?.settle(0);
      });
    return { conversation_id: conversationId, done };
  }

  private clear(wallet: string, conversationId: string): Promise<number> {
    this.deps.repo.owned(conversationId, this.nft, wallet);
    // Ordered after the conversation's turns in flight, so a reply cannot land after the clear.
    return this.enqueue(conversationId, async () => this.deps.repo.clear(conversationId));
  }

  /** Runs fn after everything already queued for the conversation. */
  private enqueue<T>(conversationId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(conversationId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.then(() => undefined, () => undefined);
    this.chains.set(conversationId, tail);
    void tail.then(() => {
      if (this.chains.get(conversationId) === tail) this.chains.delete(conversationId);
    });
    return next;
  }

  private async runTurn(
    conversationId: string, isNew: boolean, message: string, signal: AbortSignal | undefined, listener: TurnListener | undefined,
    maxTokens?: number, prelude?: ChatMessage[], hold?: { settle(tokens: number): void },
  ): Promise<TurnResult> {
    const { repo, publisher, now } = this.deps;
    const character = this.deps.character(this.nft);
    const frames = new ChunkFrames(conversationId, this.nft);
    const topic = chatTopic(conversationId);
    // Stored (committed) before the model is called.
    try {
      const at = now();
      // One group commit: the earlier messages and this one land together or not at all.
      const writes = (prelude ?? []).map((m) => repo.appendCommitted(conversationId, m.role, m.content, estimateTokens(m.content), false, at));
      writes.push(repo.appendCommitted(conversationId, 'user', message, estimateTokens(message), false, at));
      await Promise.all(writes);
    } catch (e) {
      this.deps.log.error({ err: e, nft: this.nft, conversation: conversationId }, 'storing a message failed');
      const failed: TurnResult = {
        response: '', conversation_id: conversationId, timestamp: new Date(now()).toISOString(), tokens_used: 0, incomplete: true,
        error: new ApiError('SERVICE_UNAVAILABLE', 'The message could not be stored; try again'),
      };
      publisher.publish(topic, frames.last(failed));
      return failed;
    }
    // A conversation opened by this turn holds just this message: no need to read it back.
    const history = isNew ? [{ role: 'user' as const, content: message }] : repo.context(conversationId, this.deps.historyTokenBudget);
    const messages = [{ role: 'system' as const, content: character.system_prompt }, ...history];

    let text = '';
    let usage: { promptTokens: number; completionTokens: number; truncated?: boolean } | undefined;
    let error: ApiError | undefined;
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) ac.abort();
    try {
      const { backend, model } = this.deps.model(character.model);
      for await (const ev of backend.stream({ messages, model, maxTokens, tenant: this.nft, signal: ac.signal })) {
        if (ev.type === 'usage') {
          usage = ev;
          continue;
        }
        if (!ev.content) continue;
        text += ev.content;
        publisher.publish(topic, frames.chunk(ev.content));
        if (listener) {
          const wait = listener.onChunk(ev.content);
          if (wait) await wait;
        }
        if (ac.signal.aborted) break;
      }
    } catch (e) {
      if (!ac.signal.aborted) {
        error = toApiError(e);
        if (error.code === 'INTERNAL_ERROR') this.deps.log.error({ err: e, nft: this.nft }, 'model stream failed');
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    const incomplete = ac.signal.aborted || error !== undefined;
    const completion = usage?.completionTokens ?? estimateTokens(text);
    const promptTokens = usage ? usage.promptTokens : messages.reduce((n, m) => n + estimateTokens(m.content), 0);
    const tokensUsed = promptTokens + completion;
    const at = now();
    try {
      await repo.appendCommitted(conversationId, 'assistant', text, completion, incomplete, at);
    } catch (e) {
      this.deps.log.error({ err: e, nft: this.nft, conversation: conversationId }, 'storing a reply failed');
      error ??= new ApiError('INTERNAL_ERROR', 'The reply could not be stored');
    }
    hold?.settle(tokensUsed);
    this.deps.onTurn?.(error ? 'error' : incomplete ? 'incomplete' : 'complete');
    const result: TurnResult = {
      response: text, conversation_id: conversationId, timestamp: new Date(at).toISOString(), tokens_used: tokensUsed, incomplete, error,
      truncated: usage?.truncated === true, prompt_tokens: promptTokens, completion_tokens: completion,
    };
    publisher.publish(topic, frames.last(result));
    return result;
  }
}

export function agentActorKind(deps: AgentActorDeps): ActorKind<AgentMsg, unknown> {
  return { name: AGENT_ACTOR, create: (nft) => new AgentBehaviour(nft, deps) };
}
