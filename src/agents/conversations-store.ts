import type { Fence } from '../db/fence.js';
import type { ChatMessage } from '../models/model-backend.js';
import type { Conversation, StoredMessage, TurnRecord } from './conversations-repo.js';

export type { Conversation, StoredMessage, TurnRecord } from './conversations-repo.js';

/** One row of the caller's conversation list (GET /conversations). */
export interface ConversationSummary {
  id: string;
  created_at: number;
  updated_at: number;
  messages: number;
  /** the start of the first user message */
  title: string | null;
}

/**
 * Conversations and their messages (the storage seam: conversations-store.sqlite.ts, .pg.ts;
 * contract in test/stores/conversations.contract.ts). Written by an NFT's AgentActor: writes take
 * its `fence`. Writes are group-committed: everything queued in one event-loop turn lands in one
 * transaction (PostgreSQL: one statement per fence), and each promise resolves after that commit.
 */
export interface ConversationsStore {
  get(id: string): Promise<Conversation | undefined>;
  /** The conversation if it belongs to this NFT's agent and this wallet; ApiError NOT_FOUND otherwise (no hint which). */
  owned(id: string, nft: string, wallet: string): Promise<Conversation>;
  /** Creates a conversation: visible to get() at once, committed with the next batch (before its messages). */
  create(c: Conversation, fence?: Fence): void;
  /**
   * Appends a message; resolves once it is committed (rejects with FencedError when fenced).
   * `turnId`: the chat turn it belongs to (a turn forwarded between nodes), read back by turnRecord.
   */
  appendCommitted(conversationId: string, role: StoredMessage['role'], content: string, tokens: number, incomplete: boolean, at: number, fence?: Fence, turnId?: string): Promise<void>;
  /** What a turn id already stored: its user message, and its reply if one was stored. */
  turnRecord(turnId: string): Promise<TurnRecord>;
  /** Writes everything queued now (shutdown). */
  flush(): Promise<void>;
  page(conversationId: string, limit: number, offset: number): Promise<{ messages: StoredMessage[]; total: number }>;
  /** The newest messages that fit in a token budget, oldest first, for the model's context. */
  context(conversationId: string, tokenBudget: number): Promise<ChatMessage[]>;
  /** What context() would hand the model, in tokens, sized without reading the texts back. */
  contextTokens(conversationId: string, tokenBudget: number): Promise<number>;
  /** Deletes a conversation's messages; the number deleted. */
  clear(conversationId: string, fence?: Fence): Promise<number>;
  /** A wallet's conversations with an NFT's agent, most recent first. */
  list(nft: string, wallet: string, limit: number, offset: number): Promise<{ rows: ConversationSummary[]; total: number }>;
}

/** The newest-first rows of a conversation, cut to a token budget and put back in order. */
export function fitContext(newestFirst: Iterable<{ role: StoredMessage['role']; content: string; tokens: number }>, tokenBudget: number, estimate: (s: string) => number): ChatMessage[] {
  const out: ChatMessage[] = [];
  let used = 0;
  for (const m of newestFirst) {
    const t = m.tokens || estimate(m.content);
    if (used + t > tokenBudget && out.length > 0) break;
    used += t;
    out.push({ role: m.role, content: m.content });
  }
  return out.reverse();
}

/** contextTokens() from (tokens, chars) rows, newest first. */
export function fitContextTokens(newestFirst: Iterable<{ tokens: number; chars: number }>, tokenBudget: number): number {
  let used = 0;
  for (const m of newestFirst) {
    const t = m.tokens || Math.max(1, Math.ceil(m.chars / 4));
    if (used + t > tokenBudget && used > 0) break;
    used += t;
  }
  return used;
}
