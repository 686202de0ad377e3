import type { Db } from '../db/database.js';
import { estimateTokens, type ChatMessage } from '../models/model-backend.js';

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

/** SQL for conversations and messages. Writes come from AgentActors; history reads come straight here. */
export class ConversationsRepo {
  private readonly s;

  constructor(private readonly db: Db) {
    this.s = {
      get: db.prepare<[string], Conversation>('SELECT * FROM conversations WHERE id = ?'),
      create: db.prepare('INSERT INTO conversations (id, nft_token_id, wallet, created_at, updated_at) VALUES (?, ?, ?, ?, ?)'),
      touch: db.prepare('UPDATE conversations SET updated_at = ? WHERE id = ?'),
      append: db.prepare('INSERT INTO messages (conversation_id, role, content, tokens, incomplete, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
      page: db.prepare<[string, number, number], StoredMessage>('SELECT * FROM messages WHERE conversation_id = ? ORDER BY id LIMIT ? OFFSET ?'),
      count: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM messages WHERE conversation_id = ?'),
      recent: db.prepare<[string, number], StoredMessage>('SELECT * FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?'),
      clear: db.prepare('DELETE FROM messages WHERE conversation_id = ?'),
    };
  }

  get(id: string): Conversation | undefined {
    return this.s.get.get(id);
  }

  create(c: Conversation): void {
    this.s.create.run(c.id, c.nft_token_id, c.wallet, c.created_at, c.updated_at);
  }

  /** Appends one message (and bumps the conversation) in one transaction. Returns its id. */
  append(conversationId: string, role: StoredMessage['role'], content: string, tokens: number, incomplete: boolean, at: number): number {
    return this.db.transaction(() => {
      const info = this.s.append.run(conversationId, role, content, tokens, incomplete ? 1 : 0, at);
      this.s.touch.run(at, conversationId);
      return Number(info.lastInsertRowid);
    })();
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

  clear(conversationId: string): number {
    return this.s.clear.run(conversationId).changes;
  }
}
