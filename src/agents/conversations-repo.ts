import type { Db } from '../db/database.js';
import { ApiError } from '../errors.js';
import { estimateTokens, type ChatMessage } from '../models/model-backend.js';

/** What a message read returns: the API's shape (turn_id stays inside). */
const COLUMNS = 'id, conversation_id, role, content, tokens, incomplete, created_at';

/** A turn's stored rows: its user message, and its reply if one was stored. */
export interface TurnRecord {
  user: boolean;
  reply?: { content: string; tokens: number; incomplete: boolean; created_at: number };
}

/** A TurnRecord from a turn id's rows (both stores). */
export function turnRecordOf(rows: Iterable<{ role: StoredMessage['role']; content: string; tokens: number; incomplete: number; created_at: number | string }>): TurnRecord {
  const r: TurnRecord = { user: false };
  for (const m of rows) {
    if (m.role === 'user') r.user = true;
    else if (m.role === 'assistant') r.reply = { content: m.content, tokens: m.tokens, incomplete: m.incomplete === 1, created_at: Number(m.created_at) };
  }
  return r;
}

export interface Conversation {
  id: string;
  nft_token_id: string;
  wallet: string;
  created_at: number;
  updated_at: number;
}

export interface StoredMessage {
  id: number;
  conversation_id: string;
  role: 'system' | 'user' | 'assistant';
  content: string;
  tokens: number;
  incomplete: number;
  created_at: number;
}

/** A message waiting for the next group commit; resolved once its row committed. */
export interface QueuedMessage {
  conversationId: string;
  role: StoredMessage['role'];
  content: string;
  tokens: number;
  incomplete: boolean;
  at: number;
  turnId?: string;
  resolve(): void;
  reject(e: unknown): void;
}

/**
 * A burst's first commit carries at most this many rows; each next one twice as many, up to
 * BURST_MAX_ROWS. 1,000 turns opened at once on one agent: the first turns' rows commit (and
 * their models start) while the rest are still being admitted, instead of all waiting for one
 * 1,000-row commit after the last admission (issue 15: that wait was the chat p99).
 */
export const BURST_FIRST_ROWS = 8;
export const BURST_MAX_ROWS = 128;

/**
 * SQL for conversations and messages. Writes come from AgentActors; history reads come straight
 * here. Writes use group commit: what is queued in one turn of the event loop is written in one
 * transaction (1,000 chats starting together: a few commits instead of 1,000, each ~100 us under
 * load). Within a burst the commits are bounded (BURST_FIRST_ROWS, doubling to BURST_MAX_ROWS):
 * a full batch commits at the next microtask checkpoint, so it never splits the rows one caller
 * queued synchronously together (a turn's prelude and message land together or not at all).
 */
export class ConversationsRepo {
  private readonly s;
  private messages: QueuedMessage[] = [];
  /** Conversations created but not yet committed: visible to get() meanwhile. */
  private unsaved = new Map<string, Conversation>();
  private flushScheduled = false;
  private earlyScheduled = false;
  /** Rows that make the current batch full (grows through a burst, back to BURST_FIRST_ROWS after). */
  private batchRows = BURST_FIRST_ROWS;

  constructor(private readonly db: Db, private readonly log?: { error(obj: object, msg: string): void }) {
    this.s = {
      get: db.prepare<[string], Conversation>('SELECT * FROM conversations WHERE id = ?'),
      create: db.prepare('INSERT INTO conversations (id, nft_token_id, wallet, created_at, updated_at) VALUES (?, ?, ?, ?, ?)'),
      touch: db.prepare('UPDATE conversations SET updated_at = ? WHERE id = ?'),
      append: db.prepare('INSERT INTO messages (conversation_id, role, content, tokens, incomplete, created_at, turn_id) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      page: db.prepare<[string, number, number], StoredMessage>(`SELECT ${COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id LIMIT ? OFFSET ?`),
      count: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM messages WHERE conversation_id = ?'),
      recent: db.prepare<[string, number], { role: StoredMessage['role']; content: string; tokens: number }>('SELECT role, content, tokens FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?'),
      turn: db.prepare<[string], { role: StoredMessage['role']; content: string; tokens: number; incomplete: number; created_at: number }>('SELECT role, content, tokens, incomplete, created_at FROM messages WHERE turn_id = ?'),
      clear: db.prepare('DELETE FROM messages WHERE conversation_id = ?'),
      recentTokens: db.prepare<[string, number], { tokens: number; chars: number }>('SELECT tokens, length(content) AS chars FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?'),
    };
  }

  get(id: string): Conversation | undefined {
    return this.unsaved.get(id) ?? this.s.get.get(id);
  }

  /** The conversation if it belongs to this NFT's agent and this wallet; NOT_FOUND otherwise (no hint which). */
  owned(id: string, nft: string, wallet: string): Conversation {
    const c = this.get(id);
    if (!c || c.nft_token_id !== nft || c.wallet !== wallet.toLowerCase()) {
      throw new ApiError('NOT_FOUND', `Conversation ${id} not found`, { conversation_id: id });
    }
    return c;
  }

  /** Creates a conversation; it is committed with the next batch (before any of its messages). */
  create(c: Conversation): void {
    this.unsaved.set(c.id, c);
    this.scheduleFlush();
  }

  /** Appends a message; resolves once it is committed. */
  appendCommitted(conversationId: string, role: StoredMessage['role'], content: string, tokens: number, incomplete: boolean, at: number, turnId?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.messages.push({ conversationId, role, content, tokens, incomplete, at, turnId, resolve, reject });
      if (this.messages.length >= this.batchRows) this.flushEarly();
      else this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushAtEndOfTurn);
  }

  /** The loop came round: the burst is over, the next one starts with a small first commit again. */
  private readonly flushAtEndOfTurn = (): void => {
    this.flushScheduled = false;
    this.batchRows = BURST_FIRST_ROWS;
    this.flush();
  };

  /** A full batch: committed once the current caller's synchronous code is done (a microtask). */
  private flushEarly(): void {
    if (this.earlyScheduled) return;
    this.earlyScheduled = true;
    queueMicrotask(this.flushFull);
  }

  private readonly flushFull = (): void => {
    this.earlyScheduled = false;
    if (this.messages.length < this.batchRows) return; // flushed meanwhile (shutdown's flush)
    this.batchRows = Math.min(this.batchRows * 2, BURST_MAX_ROWS);
    this.flush();
    // The rows queued after this one, if any, still go at the end of this turn of the loop.
    if (this.unsaved.size > 0 || this.messages.length > 0) this.scheduleFlush();
  };

  /** Writes everything queued in one transaction. Also called on shutdown. */
  flush(): void {
    const conversations = this.unsaved;
    const batch = this.messages;
    if (conversations.size === 0 && batch.length === 0) return;
    this.unsaved = new Map();
    this.messages = [];
    if (!this.db.open) {
      // Shutting down: the grace period is over and these turns are cut short.
      for (const m of batch) m.reject(new Error('database closed'));
      return;
    }
    try {
      // Each conversation's updated_at is written once per batch (its newest message), and a
      // conversation created in this batch is inserted with it: no UPDATE per message.
      const touched = new Map<string, number>();
      for (const m of batch) {
        const c = conversations.get(m.conversationId);
        if (c) c.updated_at = Math.max(c.updated_at, m.at);
        else touched.set(m.conversationId, Math.max(touched.get(m.conversationId) ?? 0, m.at));
      }
      this.db.transaction(() => {
        for (const c of conversations.values()) this.s.create.run(c.id, c.nft_token_id, c.wallet, c.created_at, c.updated_at);
        for (const m of batch) this.s.append.run(m.conversationId, m.role, m.content, m.tokens, m.incomplete ? 1 : 0, m.at, m.turnId ?? null);
        for (const [id, at] of touched) this.s.touch.run(at, id);
      }).immediate();
    } catch (e) {
      this.log?.error({ err: e, conversations: conversations.size, messages: batch.length }, 'chat write batch failed');
      for (const m of batch) m.reject(e);
      return;
    }
    for (const m of batch) m.resolve();
  }

  page(conversationId: string, limit: number, offset: number): { messages: StoredMessage[]; total: number } {
    return { messages: this.s.page.all(conversationId, limit, offset), total: this.s.count.get(conversationId)!.n };
  }

  /** The newest messages that fit in a token budget, oldest first, for the model's context. */
  context(conversationId: string, tokenBudget: number): ChatMessage[] {
    const out: ChatMessage[] = [];
    let used = 0;
    for (const m of this.s.recent.iterate(conversationId, 200)) {
      const t = m.tokens || estimateTokens(m.content);
      if (used + t > tokenBudget && out.length > 0) break;
      used += t;
      out.push({ role: m.role, content: m.content });
    }
    return out.reverse();
  }

  /** What context() would hand the model, in tokens: sized without reading the texts back. */
  contextTokens(conversationId: string, tokenBudget: number): number {
    let used = 0;
    for (const m of this.s.recentTokens.iterate(conversationId, 200)) {
      const t = m.tokens || Math.max(1, Math.ceil(m.chars / 4));
      if (used + t > tokenBudget && used > 0) break;
      used += t;
    }
    return used;
  }

  /** What a turn id already stored: its user message, and its reply if one was stored. */
  turnRecord(turnId: string): TurnRecord {
    return turnRecordOf(this.s.turn.all(turnId));
  }

  clear(conversationId: string): number {
    return this.s.clear.run(conversationId).changes;
  }
}
