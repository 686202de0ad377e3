import { uuidv7 } from '../src/db/time-ordered-id.js';
import type { ActorKind, Behaviour, StopReason } from '../src/contracts/actor-kind.js';
import { ApiError, isApiError, toApiError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { Publisher } from '../src/server/ws-server.js';
import { followerCheck } from '../src/server/follower-check.js';
import type { ConversationsStore, TurnRecord } from '../src/agents/conversations-store.js';
import { answerFenced, fencedAsApiError, NOT_OWNER, type Fence } from '../src/db/fence.js';
import { estimateTokens, type ChatMessage, type ModelBackend } from '../src/models/model-backend.js';
import type { AgentSettings } from '../src/providers/provider.js';
import { chatTopic, ChunkFrames } from '../src/agents/chat-frames.js';
import { pumpModel } from '../src/models/model-pump.js';
import { TurnAbort } from '../src/models/turn-abort.js';
import { TurnSlots } from './turn-slots.js';
import {
  AGENT_ACTOR, type AgentMsg, type AgentTurns, type ClearHandle, type QuotaHold, type TurnHandle, type TurnListener, type TurnResult,
} from '../src/contracts/agent-messages.js';

export { AGENT_ACTOR, type AgentMsg, type ClearHandle, type QuotaHold, type TurnHandle, type TurnListener, type TurnResult } from '../src/contracts/agent-messages.js';

export interface AgentActorDeps {
  repo: ConversationsStore;
  /**
   * The fence of this node's lease on the NFT's shard, for every write this actor makes (cluster
   * mode; throws FencedError when the lease is not held now). Absent or undefined: SQLite.
   */
  fenceFor?(nft: string): Fence | undefined;
  publisher: Publisher;
  log: Logger;
  now(): number;
  /** The agent's character (name, prompt, model, capabilities) for an NFT. */
  character(nft: string): AgentSettings | Promise<AgentSettings>;
  /** Resolves an agent's `model` setting to a backend and the model name to ask it for. */
  model(setting: string): { backend: ModelBackend; model: string };
  concurrency: number;
  historyTokenBudget: number;
  /** the operator's cap on reply tokens, sent to every backend (PANTHERS_MODEL_MAX_TOKENS) */
  maxTokens?: number;
  /** The per-NFT daily token budget: a turn holds its worst case from admission until it settles. */
  /** `enabled`: a daily limit is set (without one, usage is only counted and holds need no sizing). */
  quota?: { readonly enabled: boolean; reserve(nft: string, cost: number): QuotaHold | Promise<QuotaHold> };
  onTurn?(outcome: 'complete' | 'incomplete' | 'error'): void;
}

/** A turn admitted by the mailbox, waiting for its conversation and a slot. */
interface QueuedTurn {
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
}

/**
 * One NFT's agent: owns its conversations. The mailbox orders what changes them (opening a
 * conversation, queueing a turn, clearing); the turns themselves stream outside the mailbox, one at
 * a time per conversation (a promise chain) and up to `concurrency` conversations at once (TurnSlots).
 * Chunks go to the conversation's WS topic and to the requesting HTTP stream, never through the
 * mailbox.
 */
export class AgentBehaviour implements Behaviour<AgentMsg, unknown>, AgentTurns {
  /** set by shutdown: new turns are refused with this */
  private closing: ApiError | undefined;
  private readonly slots: TurnSlots;
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Turns queued or running, per conversation: what a clear or a shutdown aborts. */
  private readonly turns = new Map<string, Set<{ ac: TurnAbort; done: Promise<TurnResult> }>>();
  private active = 0;

  constructor(private readonly nft: string, private readonly deps: AgentActorDeps) {
    this.slots = new TurnSlots(deps.concurrency);
  }

  busy(): boolean {
    return this.active > 0;
  }

  /**
   * Stopped while turns run (cluster mode: its shard's lease lapsed or moved and the registry
   * evicted it; or it crashed and a new instance replaces it): they stop now. Else they would go
   * on calling the model and writing beside the next instance, which may be on this very node,
   * and no clear or shutdown could reach them. Shutdown aborts them itself, with its own reason.
   */
  stopped(why: StopReason): void {
    if (why === 'shutdown' || this.active === 0) return;
    const reason = why === 'crashed'
      ? new ApiError('SERVICE_UNAVAILABLE', 'The agent restarted; the partial reply is stored as incomplete')
      : new ApiError('SERVICE_UNAVAILABLE', 'This node no longer runs this agent; the reply is cut short', { reason: NOT_OWNER });
    void this.abortAll(reason, true);
  }

  receive(msg: AgentMsg): unknown {
    return answerFenced(() => this.handle(msg));
  }

  private handle(msg: AgentMsg): unknown {
    switch (msg.type) {
      case 'turn':
        return this.turn(msg);
      case 'clear':
        return this.clear(msg.wallet, msg.conversationId);
      case 'ping':
        return 'pong';
      case 'info':
        return this.deps.character(this.nft);
      case 'stop':
        void this.abortAll(new ApiError('SERVICE_UNAVAILABLE', 'The agent was stopped; the partial reply is stored as incomplete'));
        return undefined;
    }
  }

  /**
   * Aborts every turn (shutdown, the agent stopped) and resolves once each has stored what it had.
   * A turn that had not reached the model yet stores nothing.
   */
  abortAll(reason: ApiError, refuseNew = false): Promise<TurnResult[]> {
    // Shutdown: a request still on its way (authorizing, queued for the mailbox) must not start
    // a turn after this one pass, which could then write after the database closed.
    if (refuseNew) this.closing = reason;
    const all: Promise<TurnResult>[] = [];
    for (const set of this.turns.values()) {
      for (const t of set) {
        t.ac.abort(reason);
        all.push(t.done);
      }
    }
    return Promise.all(all);
  }

  private get fence(): Fence | undefined {
    return this.deps.fenceFor?.(this.nft);
  }

  private async turn(msg: Extract<AgentMsg, { type: 'turn' }>): Promise<TurnHandle> {
    if (this.closing) throw this.closing;
    // Cluster mode: refused here (nothing reserved yet) when this node does not hold the lease.
    const fence = this.fence;
    let id = msg.conversationId;
    let isNew = !id;
    /** an earlier owner opened the conversation for this very turn (a resent turn): not again */
    let openedEarlier = false;
    if (id && msg.createIfMissing && !(await this.deps.repo.get(id))) isNew = true;
    else if (id) await this.deps.repo.owned(id, this.nft, msg.wallet);
    else if (msg.resent && msg.newConversationId && (await this.deps.repo.get(msg.newConversationId))) {
      id = msg.newConversationId;
      await this.deps.repo.owned(id, this.nft, msg.wallet);
      isNew = false;
      openedEarlier = true;
    }
    id ??= msg.newConversationId ?? uuidv7();
    const cap = this.deps.maxTokens;
    const maxTokens = msg.maxTokens !== undefined && cap !== undefined ? Math.min(msg.maxTokens, cap) : msg.maxTokens ?? cap;
    // Stored with the turn's message unless that is already stored (safeTurn looks).
    const prelude = isNew || openedEarlier ? msg.prelude : undefined;
    // Admission holds the turn's worst case: the system prompt, what the model will read (a new
    // conversation: the message and any prelude; a continued one: up to the history budget) and
    // the output cap. Settled with the real count when the turn ends.
    let input = estimateTokens(msg.message);
    for (const m of prelude ?? []) input += estimateTokens(m.content);
    let system = 0;
    try {
      system = estimateTokens((await this.deps.character(this.nft)).system_prompt);
    } catch {
      // The turn itself will meet this failure and end its stream with an error frame.
    }
    // A continued conversation holds what its stored history will really put before the model
    // (up to the budget), not the whole budget: a small daily quota can still continue one.
    const context = isNew || !this.deps.quota?.enabled ? 0 : await this.deps.repo.contextTokens(id, this.deps.historyTokenBudget);
    const hold = await this.deps.quota?.reserve(this.nft, system + Math.min(input + context, Math.max(input, this.deps.historyTokenBudget)) + (maxTokens ?? 0));
    if (this.closing) {
      hold?.settle(0);
      throw this.closing;
    }
    if (isNew) {
      const now = this.deps.now();
      try {
        this.deps.repo.create({ id, nft_token_id: this.nft, wallet: msg.wallet.toLowerCase(), created_at: now, updated_at: now }, fence);
      } catch (e) {
        hold?.settle(0);
        throw e;
      }
    }
    const conversationId = id;
    msg.opened?.(conversationId);
    this.active++;
    // The turn's own abort: by the caller (its signal, or its TurnAbort handed over), a clear or
    // a shutdown.
    const ac = msg.controller ?? new TurnAbort();
    const unfollow = !msg.controller && msg.signal ? ac.follow(msg.signal) : undefined;
    let set = this.turns.get(conversationId);
    if (!set) this.turns.set(conversationId, (set = new Set()));
    const queued: QueuedTurn = {
      conversationId, isNew: isNew && !prelude?.length, message: msg.message, ac, listener: msg.listener, maxTokens, prelude, hold, fence,
      turnId: msg.turnId, resent: msg.resent === true,
    };
    const run = () => this.slots.run(() => this.safeTurn(queued));
    const t = { ac, done: undefined as unknown as Promise<TurnResult> };
    t.done = this.enqueue(conversationId, run)
      .catch((e) => this.failed(conversationId, e, false)) // the slots or the chain failing: still an answer
      .finally(() => {
        this.active--;
        // A turn that ended before settling (it failed early) releases its hold.
        try {
          hold?.settle(0);
        } catch (e) {
          this.deps.log.error({ err: e, nft: this.nft }, 'releasing a quota hold failed');
        }
        unfollow?.();
        set.delete(t);
        if (set.size === 0 && this.turns.get(conversationId) === set) this.turns.delete(conversationId);
      });
    set.add(t);
    return { conversation_id: conversationId, done: t.done };
  }

  private async clear(wallet: string, conversationId: string): Promise<ClearHandle> {
    await this.deps.repo.owned(conversationId, this.nft, wallet);
    const fence = this.fence;
    // A clear does not wait behind a streaming reply: it cuts the conversation's turns short (each
    // stores what it had and ends its stream), then deletes, ordered after them so no reply can
    // land after the clear. The mailbox moves on at once; the caller awaits `done`.
    for (const t of this.turns.get(conversationId) ?? []) t.ac.abort(new ApiError('CONFLICT', 'The conversation was cleared'));
    return { done: this.enqueue(conversationId, () => this.deps.repo.clear(conversationId, fence)) };
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

  /** A turn's answer when it ended before or outside the model: published as the stream's last frame. */
  private failed(conversationId: string, e: unknown, stored: boolean, text = ''): TurnResult {
    const error = toApiError(e);
    const result: TurnResult = {
      response: text, conversation_id: conversationId, timestamp: new Date(this.deps.now()).toISOString(), tokens_used: 0, incomplete: true, error, stored,
    };
    try {
      this.deps.publisher.publish(chatTopic(conversationId), new ChunkFrames(conversationId, this.nft).last(result));
    } catch (pe) {
      this.deps.log.error({ err: pe, nft: this.nft }, 'publishing a final chat frame failed');
    }
    return result;
  }

  /**
   * Runs a turn and always answers: a throw anywhere (SQLITE_BUSY/FULL, building the character
   * or the context, the quota) ends it with an error frame and, once the user's message is
   * stored, a stored incomplete reply. A turn aborted before the model starts stores nothing.
   */
  private async safeTurn(t: QueuedTurn): Promise<TurnResult> {
    const { repo, now, log } = this.deps;
    const { conversationId, ac, fence, turnId } = t;
    if (ac.aborted) {
      const reason = ac.reason;
      return this.failed(conversationId, reason instanceof ApiError ? reason : new ApiError('SERVICE_UNAVAILABLE', 'The turn was cancelled before the model started; nothing was stored'), false);
    }
    // A turn resent after an attempt reached an earlier owner (which then died or lost the
    // shard): what that owner stored is not stored again. Its reply stored: that reply is the
    // answer. Only its message stored: the model answers it now (the earlier owner's lease is
    // gone, so its own reply can no longer be written).
    let stored = false;
    if (t.resent && turnId) {
      try {
        const seen = await repo.turnRecord(turnId);
        if (seen.reply) return this.replay(conversationId, seen.reply, t.listener);
        stored = seen.user;
      } catch (e) {
        log.error({ err: e, nft: this.nft, conversation: conversationId }, 'reading a resent turn back failed');
        // Unknown whether an earlier owner stored it: not a first attempt for an idempotent retry.
        return this.failed(conversationId, new ApiError('SERVICE_UNAVAILABLE', 'The turn could not be checked against an earlier attempt; try again'), true);
      }
    }
    // Stored (committed) before the model is called.
    if (!stored) {
      try {
        const at = now();
        // One group commit: the earlier messages and this one land together or not at all.
        const writes = (t.prelude ?? []).map((m) => repo.appendCommitted(conversationId, m.role, m.content, estimateTokens(m.content), false, at, fence));
        writes.push(repo.appendCommitted(conversationId, 'user', t.message, estimateTokens(t.message), false, at, fence, turnId));
        await Promise.all(writes);
      } catch (e) {
        log.error({ err: e, nft: this.nft, conversation: conversationId }, 'storing a message failed');
        return this.failed(conversationId, new ApiError('SERVICE_UNAVAILABLE', 'The message could not be stored; try again'), false);
      }
    }
    // The reply so far, as its deltas: a string built with += is a rope of one node per delta,
    // kept alive as long as the turn (~1 KB a turn at 40 deltas). Every PROGRESS_RUN deltas, the
    // latest run is joined into one string (onDelta): a turn holds a string per run, not per token.
    const progress: string[] = [];
    try {
      return await this.runTurn(t, progress);
    } catch (e) {
      log.error({ err: e, nft: this.nft, conversation: conversationId }, 'chat turn failed');
      const error = isApiError(e) ? e : new ApiError('INTERNAL_ERROR', 'The turn failed; the partial reply is stored as incomplete');
      const partial = progress.join('');
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
      return this.failed(conversationId, error, true, partial);
    }
  }

  /** A resent turn whose reply an earlier owner stored: that reply, streamed as one chunk. */
  private async replay(conversationId: string, reply: NonNullable<TurnRecord['reply']>, listener: TurnListener | undefined): Promise<TurnResult> {
    const frames = new ChunkFrames(conversationId, this.nft);
    const topic = chatTopic(conversationId);
    if (reply.content) {
      if (this.deps.publisher.subscribers(topic) > 0) this.deps.publisher.publish(topic, frames.chunk(reply.content));
      try {
        await listener?.onChunk(reply.content);
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

  private async runTurn(t: QueuedTurn, progress: string[]): Promise<TurnResult> {
    const { repo, publisher, now } = this.deps;
    const { conversationId, ac, listener, maxTokens, hold, fence } = t;
    const character = await this.deps.character(this.nft);
    const frames = new ChunkFrames(conversationId, this.nft);
    const topic = chatTopic(conversationId);
    // A conversation opened by this turn holds just this message: no need to read it back.
    const history = t.isNew ? [{ role: 'user' as const, content: t.message }] : await repo.context(conversationId, this.deps.historyTokenBudget);
    const messages = [{ role: 'system' as const, content: character.system_prompt }, ...history];

    let usage: { promptTokens: number; completionTokens: number; truncated?: boolean } | undefined;
    let error: ApiError | undefined;
    // Each delta is rendered and published once, and only when the topic has followers (a turn
    // over SSE alone renders no WS frame); no per-subscriber work here (uWS fans out in C++).
    const followed = followerCheck(publisher, topic);
    const onDelta = (content: string): void | Promise<void> => {
      // The run after the first string becomes one string, joined onto it (no copy of what it holds).
      if (progress.push(content) === PROGRESS_RUN) progress[0] += progress.splice(1).join('');
      if (followed()) publisher.publish(topic, frames.chunk(content));
      return listener?.onChunk(content);
    };
    try {
      const { backend, model } = this.deps.model(character.model);
      usage = await pumpModel(backend, { messages, model, maxTokens, tenant: this.nft }, ac, onDelta);
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
    const text = progress.join('');
    const completion = usage?.completionTokens ?? estimateTokens(text);
    const promptTokens = usage ? usage.promptTokens : messages.reduce((n, m) => n + estimateTokens(m.content), 0);
    const tokensUsed = promptTokens + completion;
    const at = now();
    // The usage is queued with the reply row: on SQLite both go in one commit (the connection's
    // write batch). The tokens were spent whether or not the reply is stored, so it counts either way.
    const settled = settleNow(hold, tokensUsed);
    try {
      await repo.appendCommitted(conversationId, 'assistant', text, completion, incomplete, at, fence, t.turnId);
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
      await settled;
      this.deps.onTurn?.(error ? 'error' : incomplete ? 'incomplete' : 'complete');
    } catch (e) {
      this.deps.log.error({ err: e, nft: this.nft }, 'counting a turn failed');
    }
    const result: TurnResult = {
      response: text, conversation_id: conversationId, timestamp: new Date(at).toISOString(), tokens_used: tokensUsed, incomplete, error,
      truncated: usage?.truncated === true, prompt_tokens: promptTokens, completion_tokens: completion, stored: true,
    };
    publisher.publish(topic, frames.last(result));
    return result;
  }
}

/** Deltas kept apart before the reply so far is joined into one string (see safeTurn). */
const PROGRESS_RUN = 16;

/**
 * Starts a hold's settle and hands back its outcome, awaited later: a throw becomes a rejection,
 * handled meanwhile so it is not an unhandled rejection while the reply is being stored.
 */
function settleNow(hold: QueuedTurn['hold'], tokens: number): Promise<void> | undefined {
  let p: Promise<void> | undefined;
  try {
    p = hold?.settle(tokens);
  } catch (e) {
    p = Promise.reject(e);
  }
  p?.catch(() => {});
  return p;
}

export function agentActorKind(deps: AgentActorDeps): ActorKind<AgentMsg, unknown> {
  return {
    name: AGENT_ACTOR,
    create: (nft) => {
      // Cluster mode: built only on the owner of the NFT's shard (single activation); a message
      // that reached this registry after the shard moved is answered not_owner, and retried there.
      try {
        deps.fenceFor?.(nft);
      } catch (e) {
        throw fencedAsApiError(e);
      }
      return new AgentBehaviour(nft, deps);
    },
  };
}
