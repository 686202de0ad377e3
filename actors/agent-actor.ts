import { uuidv7 } from '../src/db/time-ordered-id.js';
import type { ActorKind, Behaviour, StopReason } from '../src/contracts/actor-kind.js';
import { ApiError } from '../src/errors.js';
import { answerFenced, fencedAsApiError, NOT_OWNER, type Fence } from '../src/db/fence.js';
import { estimateTokens } from '../src/models/model-backend.js';
import { TurnAbort } from '../src/models/turn-abort.js';
import { TurnSlots } from './turn-slots.js';
import { AgentTurn, isPromise, type TurnDeps, type TurnOwner } from './agent-turn.js';
import {
  AGENT_ACTOR, type AgentMsg, type AgentTurns, type ClearHandle, type QuotaHold, type TurnHandle, type TurnResult,
} from '../src/contracts/agent-messages.js';

export { AGENT_ACTOR, type AgentMsg, type ClearHandle, type QuotaHold, type TurnHandle, type TurnListener, type TurnResult } from '../src/contracts/agent-messages.js';

export interface AgentActorDeps extends TurnDeps {
  /**
   * The fence of this node's lease on the NFT's shard, for every write this actor makes (cluster
   * mode; throws FencedError when the lease is not held now). Absent or undefined: SQLite.
   */
  fenceFor?(nft: string): Fence | undefined;
  concurrency: number;
  /** the operator's cap on reply tokens, sent to every backend (PANTHERS_MODEL_MAX_TOKENS) */
  maxTokens?: number;
  /** The per-NFT daily token budget: a turn holds its worst case from admission until it settles. */
  /** `enabled`: a daily limit is set (without one, usage is only counted and holds need no sizing). */
  quota?: { readonly enabled: boolean; reserve(nft: string, cost: number): QuotaHold | Promise<QuotaHold> };
}

/** A clear waiting in its conversation's queue behind the turns before it. */
interface ClearJob {
  run(): void;
}

/**
 * One NFT's agent: owns its conversations. The mailbox orders what changes them (opening a
 * conversation, queueing a turn, clearing); the turns themselves stream outside the mailbox, one at
 * a time per conversation (its queue: turns and clears, the head runs) and up to `concurrency`
 * conversations at once (TurnSlots). Each turn is one AgentTurn. Chunks go to the conversation's
 * WS topic and to the requesting HTTP stream, never through the mailbox.
 */
export class AgentBehaviour implements Behaviour<AgentMsg, unknown>, AgentTurns, TurnOwner {
  /** set by shutdown: new turns are refused with this */
  private closing: ApiError | undefined;
  private readonly slots: TurnSlots;
  /** What runs (the head) and waits, per conversation: what a clear or a shutdown aborts. */
  private readonly queues = new Map<string, (AgentTurn | ClearJob)[]>();
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
    for (const q of this.queues.values()) {
      for (const t of q) {
        if (!(t instanceof AgentTurn)) continue;
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
    // Stored with the turn's message unless that is already stored (AgentTurn looks).
    const prelude = isNew || openedEarlier ? msg.prelude : undefined;
    // Admission holds the turn's worst case: the system prompt, what the model will read (a new
    // conversation: the message and any prelude; a continued one: up to the history budget) and
    // the output cap. Settled with the real count when the turn ends.
    let input = estimateTokens(msg.message);
    for (const m of prelude ?? []) input += estimateTokens(m.content);
    let system = 0;
    try {
      // (no await when the character is at hand: a hop per turn less)
      const got = this.deps.character(this.nft);
      system = estimateTokens((isPromise(got) ? await got : got).system_prompt);
    } catch {
      // The turn itself will meet this failure and end its stream with an error frame.
    }
    // A continued conversation holds what its stored history will really put before the model
    // (up to the budget), not the whole budget: a small daily quota can still continue one.
    const context = isNew || !this.deps.quota?.enabled ? 0 : await this.deps.repo.contextTokens(id, this.deps.historyTokenBudget);
    const reserved = this.deps.quota?.reserve(this.nft, system + Math.min(input + context, Math.max(input, this.deps.historyTokenBudget)) + (maxTokens ?? 0));
    const hold = reserved && isPromise(reserved) ? await reserved : reserved;
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
    const t = new AgentTurn(this, this.nft, this.deps, {
      conversationId, isNew: isNew && !prelude?.length, message: msg.message, ac, listener: msg.listener, maxTokens, prelude, hold, fence,
      turnId: msg.turnId, resent: msg.resent === true, unfollow,
    });
    this.enqueue(conversationId, t);
    return { conversation_id: conversationId, done: t.done };
  }

  /** AgentTurn: it is over (its answer is published): its slot, its queue place and its hold go. */
  turnEnded(t: AgentTurn): void {
    this.active--;
    // A turn that ended before settling (it failed early) releases its hold.
    try {
      t.hold?.settle(0);
    } catch (e) {
      this.deps.log.error({ err: e, nft: this.nft }, 'releasing a quota hold failed');
    }
    t.unfollow?.();
    this.slots.release();
    this.dequeue(t.conversationId);
  }

  private async clear(wallet: string, conversationId: string): Promise<ClearHandle> {
    await this.deps.repo.owned(conversationId, this.nft, wallet);
    const fence = this.fence;
    // A clear does not wait behind a streaming reply: it cuts the conversation's turns short (each
    // stores what it had and ends its stream), then deletes, ordered after them so no reply can
    // land after the clear. The mailbox moves on at once; the caller awaits `done`.
    for (const t of this.queues.get(conversationId) ?? []) if (t instanceof AgentTurn) t.ac.abort(new ApiError('CONFLICT', 'The conversation was cleared'));
    return {
      done: new Promise<number>((resolve, reject) => {
        this.enqueue(conversationId, {
          run: () => {
            let p: Promise<number>;
            try {
              p = this.deps.repo.clear(conversationId, fence);
            } catch (e) {
              p = Promise.reject(e);
            }
            void p.then(resolve, reject).finally(() => this.dequeue(conversationId));
          },
        });
      }),
    };
  }

  /** Runs `job` after everything already queued for the conversation. */
  private enqueue(conversationId: string, job: AgentTurn | ClearJob): void {
    const q = this.queues.get(conversationId);
    if (q) {
      q.push(job);
      return;
    }
    this.queues.set(conversationId, [job]);
    this.begin(job);
  }

  /** The conversation's head is done: the next job starts. */
  private dequeue(conversationId: string): void {
    const q = this.queues.get(conversationId);
    if (!q) return;
    q.shift();
    const next = q[0];
    if (next) this.begin(next);
    else this.queues.delete(conversationId);
  }

  private begin(job: AgentTurn | ClearJob): void {
    if (job instanceof AgentTurn) this.slots.take(job);
    else job.run();
  }
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
