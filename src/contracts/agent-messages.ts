import type { ApiError } from '../errors.js';
import type { ChatMessage } from '../models/model-backend.js';
import type { TurnAbort } from '../models/turn-abort.js';

/** The kind name of an NFT's agent (actors/agent-actor.ts): its conversations and turns. */
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
  /**
   * False when the turn left nothing in the conversation: it was cancelled before the model started
   * (client gone, deadline, shutdown, cleared) or the user's message could not be stored. A retry
   * of such a turn is a first attempt, not a duplicate.
   */
  stored: boolean;
}

/** Receives a turn's chunks as they stream (an SSE response). Returning a promise pauses the model. */
export interface TurnListener {
  onChunk(content: string): void | Promise<void>;
}

export interface TurnHandle {
  conversation_id: string;
  /** Settles when the reply is stored: resolves even when the turn failed (see result.error), never rejects. */
  done: Promise<TurnResult>;
}

/** What a clear answers at once (the mailbox never waits on it): resolves with the rows deleted. */
export interface ClearHandle {
  done: Promise<number>;
}

/**
 * A chat turn. The data fields cross nodes as they are; `signal`, `listener` and `opened` are
 * local-only: on another node the cluster directory stands for them (the conversation's frames
 * carry the chunks, a forwarded cancel the abort). See src/cluster/remote-turns.ts.
 */
export interface TurnMsg {
  type: 'turn';
  wallet: string;
  conversationId?: string;
  /**
   * The id to give the conversation this turn opens when conversationId is absent (default: a
   * random UUID). The node that received the request picks it, so it can follow the
   * conversation's frames before the turn is forwarded.
   */
  newConversationId?: string;
  message: string;
  /**
   * The turn's id (cluster mode: a turn forwarded to another node, src/cluster/remote-turns.ts),
   * stored with its user message and its reply.
   */
  turnId?: string;
  /**
   * The turn may already have run on an earlier owner (a forward sent again after an attempt that
   * reached one): its turn id is looked up first, and what is stored is not stored again.
   */
  resent?: boolean;
  /** asks for a shorter reply than the operator's cap */
  maxTokens?: number;
  /** conversationId names a conversation to open when it does not exist yet (OpenAI `user`) */
  createIfMissing?: boolean;
  /** earlier messages the caller sent, stored before this one when the conversation is new */
  prelude?: ChatMessage[];
  /** local only: the client went away or a deadline passed */
  signal?: AbortSignal;
  /**
   * local only: the caller's abort, used as the turn's own instead of `signal` (a clear, a stop
   * or a shutdown aborts it): one per turn and no listener instead of two and one.
   */
  controller?: TurnAbort;
  /** local only */
  listener?: TurnListener;
  /** local only: called synchronously once the conversation id is known, before any chunk is published. */
  opened?(conversationId: string): void;
}

export type AgentMsg =
  | TurnMsg
  | { type: 'clear'; wallet: string; conversationId: string }
  | { type: 'ping' }
  | { type: 'info' }
  /** The agent is being stopped (its deployment stopped): its turns end now, stored as incomplete. */
  | { type: 'stop' };

/** What shutdown needs of a live agent: end its turns, each storing what it had. */
export interface AgentTurns {
  abortAll(reason: ApiError, refuseNew?: boolean): Promise<TurnResult[]>;
}

/**
 * A turn's share of the daily token quota, held from admission and settled with the real count:
 * the hold is released at once, the promise resolves once the usage is written (never rejects).
 */
export interface QuotaHold {
  settle(tokens: number): Promise<void>;
}
