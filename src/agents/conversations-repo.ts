import type { Db } from '../db/database.js';
import { WriteBatch, type BatchWriter } from '../db/write-batch.js';
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

// Where the burst bounds live now (one write batch per connection); importable from here as before.
export { BURST_FIRST_ROWS, BURST_MAX_ROWS } from '../db/write-batch.js';

/**
 * SQL for conversations and messages. Writes come from AgentActors; history reads come straight
 * here. Writes join the connection's group commit (WriteBatch): what is queued in one turn of the
 * event loop, by this and every other store on the connection, is written in one transaction
 * (1,000 chats starting together: a few commits instead of 1,000, each ~100 us under load).
 */
export class ConversationsRepo implements BatchWriter {
  private readonly s;
  private readonly batch: WriteBatch;
  private messages: QueuedMessage[] = [];
  /** Conversations created but not yet committed: visible to get() meanwhile. */
  private unsaved = new Map<string, Conversation>();

  constructor(private readonly db: Db, private readonly log?: { error(obj: object, msg: string): void }) {
    this.batch = WriteBatch.of(db);
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
    this.batch.add(this, 0);
  }

  /** Appends a message; resolves once it is committed. */
  appendCommitted(conversationId: string, role: StoredMessage['role'], content: string, tokens: number, incomplete: boolean, at: number, turnId?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.messages.push({ conversationId, role, content, tokens, incomplete, at, turnId, resolve, reject });
      this.batch.add(this);
    });
  }

  /** Writes everything queued (by every store on this connection) in one transaction. Also called on shutdown. */
  flush(): void {
    this.batch.flush();
  }

  /** BatchWriter: inside the batch's transaction. */
  writeBatch(): void {
    const conversations = this.unsaved;
    const batch = this.messages;
    // Each conversation's updated_at is written once per batch (its newest message), and a
    // conversation created in this batch is inserted with it: no UPDATE per message.
    const touched = new Map<string, number>();
    for (const m of batch) {
      const c = conversations.get(m.conversationId);
      if (c) c.updated_at = Math.max(c.updated_at, m.at);
      else touched.set(m.conversationId, Math.max(touched.get(m.conversationId) ?? 0, m.at));
    }
    for (const c of conversations.values()) this.s.create.run(c.id, c.nft_token_id, c.wallet, c.created_at, c.updated_at);
    for (const m of batch) this.s.append.run(m.conversationId, m.role, m.content, m.tokens, m.incomplete ? 1 : 0, m.at, m.turnId ?? null);
    for (const [id, at] of touched) this.s.touch.run(at, id);
  }

  /** BatchWriter: after the transaction, committed or not. */
  batchDone(err?: unknown): void {
    const conversations = this.unsaved;
    const batch = this.messages;
    this.unsaved = new Map();
    this.messages = [];
    if (err === undefined) {
      for (const m of batch) m.resolve();
      return;
    }
    // The database gone at shutdown is expected there (the turns are cut short): not logged.
    if (this.db.open) this.log?.error({ err, conversations: conversations.size, messages: batch.length }, 'chat write batch failed');
    for (const m of batch) m.reject(err);
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
