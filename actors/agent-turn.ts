import { ApiError, isApiError, toApiError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { Publisher } from '../src/server/ws-server.js';
import type { ConversationsStore, TurnRecord } from '../src/agents/conversations-store.js';
import { fencedAsApiError, type Fence } from '../src/db/fence.js';
import { estimateTokens, type ChatMessage, type ModelBackend } from '../src/models/model-backend.js';
import type { AgentSettings } from '../src/providers/provider.js';
import { chatTopic, ChunkFrames } from '../src/agents/chat-frames.js';
import { pumpModel, type UsageEvent } from '../src/models/model-pump.js';
import type { TurnAbort } from '../src/models/turn-abort.js';
import type { SlotTaker } from './turn-slots.js';
import type { QuotaHold, TurnListener, TurnResult } from '../src/contracts/agent-messages.js';

/** What a turn needs of its agent's dependencies (AgentActorDeps has these and more). */
export interface TurnDeps {
  repo: ConversationsStore;
  publisher: Publisher;
  log: Logger;
  now(): number;
  character(nft: string): AgentSettings | Promise<AgentSettings>;
  model(setting: string): { backend: ModelBackend; model: string };
  historyTokenBudget: number;
  onTurn?(outcome: 'complete' | 'incomplete' | 'error'): void;
}

/** The agent a turn belongs to: told once when the turn is over (before `done` settles). */
export interface TurnOwner {
  turnEnded(turn: AgentTurn): void;
}

/** What admission settled for a turn. */
export interface TurnSpec {
  conversationId: string;
  /** the conversation was opened by this turn with just this message: no history to read back */
  isNew: boolean;
  message: string;
  ac: TurnAbort;
  listener?: TurnListener;
  maxTokens?: number;
  prelude?: ChatMessage[];
  hold?: QuotaHold;
  fence?: Fence;
  turnId?: string;
  resent: boolean;
  /** stops the turn's abort following the caller's AbortSignal */
  unfollow?: () => void;
}

/** Deltas kept apart before the reply so far is joined into one string (see `delta`). */
const PROGRESS_RUN = 16;

/**
 * One chat turn, from admission to its last frame, as one object: its conversation's queue
 * entry, its slot in TurnSlots, its chunk sink and its answer. What it replaces held a promise
 * chain, a slot wrapper, a catch and a finally, and three closures per turn (issue 15: about 4 KB
 * of closures, contexts and promises per streaming turn, and their GC). The mailbox never waits
 * on it: `done` settles once the reply is stored and the last frame published, and never rejects.
 */
export class AgentTurn implements SlotTaker {
  readonly done: Promise<TurnResult>;
  readonly conversationId: string;
  readonly ac: TurnAbort;
  readonly hold: QuotaHold | undefined;
  readonly unfollow: (() => void) | undefined;
  private resolveDone!: (r: TurnResult) => void;
  /**
   * The reply so far, as its deltas: a string built with += is a rope of one node per delta,
   * kept alive as long as the turn. Every PROGRESS_RUN deltas the latest run is joined into one
   * string: a turn holds a string per run, not per token.
   */
  private readonly progress: string[] = [];
  private frames: ChunkFrames | undefined;
  private topic = '';
  /** whether the topic has followers: a yes is kept, a no is asked again after a new subscription */
  private followed = false;
  private seen = -1;
  /** the model's sink: the one closure a turn makes */
  private readonly sink = (content: string): void | Promise<void> => this.delta(content);

  constructor(
    private readonly owner: TurnOwner,
    private readonly nft: string,
    private readonly deps: TurnDeps,
    private readonly spec: TurnSpec,
  ) {
    this.conversationId = spec.conversationId;
    this.ac = spec.ac;
    this.hold = spec.hold;
    this.unfollow = spec.unfollow;
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** TurnSlots: the turn has its conversation's turn and a slot. */
  startInSlot(): void {
    void this.run();
  }

  /**
   * Runs the turn and always answers: a throw anywhere (SQLITE_BUSY/FULL, building the character
   * or the context, the quota) ends it with an error frame and, once the user's message is
   * stored, a stored incomplete reply. A turn aborted before the model starts stores nothing.
   */
  private async run(): Promise<void> {
    let result: TurnResult;
    try {
      result = await this.attempt();
    } catch (e) {
      // attempt() answers every failure itself; this is the answer should it not.
      result = this.failed(e, false);
    }
    this.owner.turnEnded(this);
    this.resolveDone(result);
  }

  private async attempt(): Promise<TurnResult> {
    const { repo, now, log } = this.deps;
    const { conversationId, fence, turnId } = this.spec;
    const ac = this.ac;
    if (ac.aborted) {
      const reason = ac.reason;
      return this.failed(reason instanceof ApiError ? reason : new ApiError('SERVICE_UNAVAILABLE', 'The turn was cancelled before the model started; nothing was stored'), false);
    }
    // A turn resent after an attempt reached an earlier owner (which then died or lost the
    // shard): what that owner stored is not stored again. Its reply stored: that reply is the
    // answer. Only its message stored: the model answers it now (the earlier owner's lease is
    // gone, so its own reply can no longer be written).
    let stored = false;
    if (this.spec.resent && turnId) {
      try {
        const seen = await repo.turnRecord(turnId);
        if (seen.reply) return this.replay(seen.reply);
        stored = seen.user;
      } catch (e) {
        log.error({ err: e, nft: this.nft, conversation: conversationId }, 'reading a resent turn back failed');
        // Unknown whether an earlier owner stored it: not a first attempt for an idempotent retry.
        return this.failed(new ApiError('SERVICE_UNAVAILABLE', 'The turn could not be checked against an earlier attempt; try again'), true);
      }
    }
    // Stored (committed) before the model is called.
    if (!stored) {
      try {
        const at = now();
        const message = this.spec.message;
        const prelude = this.spec.prelude;
        if (prelude?.length) {
          // One group commit: the earlier messages and this one land together or not at all.
          const writes = prelude.map((m) => repo.appendCommitted(conversationId, m.role, m.content, estimateTokens(m.content), false, at, fence));
          writes.push(repo.appendCommitted(conversationId, 'user', message, estimateTokens(message), false, at, fence, turnId));
          await Promise.all(writes);
        } else await repo.appendCommitted(conversationId, 'user', message, estimateTokens(message), false, at, fence, turnId);
      } catch (e) {
        log.error({ err: e, nft: this.nft, conversation: conversationId }, 'storing a message failed');
        return this.failed(new ApiError('SERVICE_UNAVAILABLE', 'The message could not be stored; try again'), false);
      }
    }
    try {
      return await this.stream();
    } catch (e) {
      log.error({ err: e, nft: this.nft, conversation: conversationId }, 'chat turn failed');
      const error = isApiError(e) ? e : new ApiError('INTERNAL_ERROR', 'The turn failed; the partial reply is stored as incomplete');
      const partial = this.progress.join('');
      try {
        await repo.appendCommitted(conversationId, 'assistant', partial, estimateTokens(partial), true, now(), fence, turnId);
      } catch (se) {
        log.error({ err: se, nft: this.nft, conversation: conversationId }, 'storing an incomplete reply failed');
      }
      try {
        this.deps.onTurn?.('error');
      } catch {
        // metrics only
      }
      return this.failed(error, true, partial);
    }
  }

  /** Each delta is rendered and published once, and only when the topic has followers. */
  private delta(content: string): void | Promise<void> {
    const progress = this.progress;
    // The run after the first string becomes one string, joined onto it (no copy of what it holds).
    if (progress.push(content) === PROGRESS_RUN) progress[0] += progress.splice(1).join('');
    if (this.isFollowed()) this.deps.publisher.publish(this.topic, this.frames!.chunk(content));
    return this.spec.listener?.onChunk(content);
  }

  /**
   * Whether the topic has followers, asked once per chunk: uWS fans the
   * frame out in C++; this keeps the per-chunk JavaScript to a counter compare.
   */
  private isFollowed(): boolean {
    if (this.followed) return true;
    const publisher = this.deps.publisher;
    const n = publisher.subscriptions;
    if (n === this.seen) return false;
    this.seen = n;
    return (this.followed = publisher.subscribers(this.topic) > 0);
  }

  private async stream(): Promise<TurnResult> {
    const { repo, publisher, now } = this.deps;
    const { conversationId, maxTokens, fence, turnId } = this.spec;
    const ac = this.ac;
    const got = this.deps.character(this.nft);
    const character = isPromise(got) ? await got : got;
    this.frames = new ChunkFrames(conversationId, this.nft);
    this.topic = chatTopic(conversationId);
    const system = { role: 'system' as const, content: character.system_prompt };
    // A conversation opened by this turn holds just this message: no need to read it back.
    const messages: ChatMessage[] = this.spec.isNew
      ? [system, { role: 'user', content: this.spec.message }]
      : [system, ...(await repo.context(conversationId, this.deps.historyTokenBudget))];

    let usage: UsageEvent | undefined;
    let error: ApiError | undefined;
    try {
      const { backend, model } = this.deps.model(character.model);
      usage = await pumpModel(backend, { messages, model, maxTokens, tenant: this.nft }, ac, this.sink);
    } catch (e) {
      if (!ac.aborted) {
        error = toApiError(e);
        if (error.code === 'INTERNAL_ERROR') this.deps.log.error({ err: e, nft: this.nft }, 'model stream failed');
      }
    }
    // Cut short by the server (deadline, clear, shutdown): the final frame says why. A client that
    // went away sees nothing, so its reason (not an ApiError) is not an error.
    if (ac.aborted && ac.reason instanceof ApiError) error ??= ac.reason;
    let incomplete = ac.aborted || error !== undefined;
    const text = this.progress.join('');
    const completion = usage?.completionTokens ?? estimateTokens(text);
    const promptTokens = usage ? usage.promptTokens : messages.reduce((n, m) => n + estimateTokens(m.content), 0);
    const tokensUsed = promptTokens + completion;
    const at = now();
    // The usage is queued with the reply row: on SQLite both go in one commit (the connection's
    // write batch). The tokens were spent whether or not the reply is stored, so it counts either way.
    const settled = settleNow(this.hold, tokensUsed);
    try {
      await repo.appendCommitted(conversationId, 'assistant', text, completion, incomplete, at, fence, turnId);
    } catch (e) {
      // Not stored: the reply the client saw is not in the history, so it is not a whole turn.
      incomplete = true;
      const fenced = fencedAsApiError(e);
      if (fenced !== e) {
        // This node lost the NFT's shard while the turn ran (a paused or cut-off node): not a
        // server fault. What the new owner holds is the user's message, without this reply.
        this.deps.log.warn({ nft: this.nft, conversation: conversationId }, 'a reply was fenced: this node no longer owns the agent');
        error ??= fenced as ApiError;
      } else {
        this.deps.log.error({ err: e, nft: this.nft, conversation: conversationId }, 'storing a reply failed');
        error ??= new ApiError('INTERNAL_ERROR', 'The reply could not be stored');
      }
    }
    // The reply is stored: nothing after this may fail the turn (that would store it twice).
    // The usage is written before the last frame tells the client the turn is over.
    try {
      if (settled) await settled;
      this.deps.onTurn?.(error ? 'error' : incomplete ? 'incomplete' : 'complete');
    } catch (e) {
      this.deps.log.error({ err: e, nft: this.nft }, 'counting a turn failed');
    }
    const result: TurnResult = {
      response: text, conversation_id: conversationId, timestamp: new Date(at).toISOString(), tokens_used: tokensUsed, incomplete, error,
      truncated: usage?.truncated === true, prompt_tokens: promptTokens, completion_tokens: completion, stored: true,
    };
    publisher.publish(this.topic, this.frames.last(result));
    return result;
  }

  /** A resent turn whose reply an earlier owner stored: that reply, streamed as one chunk. */
  private async replay(reply: NonNullable<TurnRecord['reply']>): Promise<TurnResult> {
    const conversationId = this.conversationId;
    const frames = new ChunkFrames(conversationId, this.nft);
    const topic = chatTopic(conversationId);
    if (reply.content) {
      if (this.deps.publisher.subscribers(topic) > 0) this.deps.publisher.publish(topic, frames.chunk(reply.content));
      try {
        await this.spec.listener?.onChunk(reply.content);
      } catch {
        // a listener that throws loses its chunk, not the turn
      }
    }
    const result: TurnResult = {
      response: reply.content, conversation_id: conversationId, timestamp: new Date(reply.created_at).toISOString(), tokens_used: reply.tokens,
      incomplete: reply.incomplete, completion_tokens: reply.tokens, stored: true,
      error: reply.incomplete ? new ApiError('SERVICE_UNAVAILABLE', 'The node that ran this turn first cut it short; the partial reply is stored as incomplete', { reason: 'owner_lost' }) : undefined,
    };
    this.deps.publisher.publish(topic, frames.last(result));
    return result;
  }

  /** The answer of a turn that ended before or outside the model: published as the stream's last frame. */
  private failed(e: unknown, stored: boolean, text = ''): TurnResult {
    return failedTurn(this.deps, this.nft, this.conversationId, e, stored, text);
  }
}

/** A turn's answer when it ended before or outside the model, published as its last frame. */
export function failedTurn(deps: Pick<TurnDeps, 'publisher' | 'log' | 'now'>, nft: string, conversationId: string, e: unknown, stored: boolean, text = ''): TurnResult {
  const error = toApiError(e);
  const result: TurnResult = {
    response: text, conversation_id: conversationId, timestamp: new Date(deps.now()).toISOString(), tokens_used: 0, incomplete: true, error, stored,
  };
  try {
    deps.publisher.publish(chatTopic(conversationId), new ChunkFrames(conversationId, nft).last(result));
  } catch (pe) {
    deps.log.error({ err: pe, nft }, 'publishing a final chat frame failed');
  }
  return result;
}

/**
 * Starts a hold's settle and hands back its outcome, awaited later: a throw becomes a rejection,
 * handled meanwhile so it is not an unhandled rejection while the reply is being stored.
 */
function settleNow(hold: QuotaHold | undefined, tokens: number): Promise<void> | undefined {
  let p: Promise<void> | undefined;
  try {
    p = hold?.settle(tokens);
  } catch (e) {
    p = Promise.reject(e);
  }
  p?.catch(() => {});
  return p;
}

export function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return v !== null && typeof v === 'object' && typeof (v as Promise<T>).then === 'function';
}
