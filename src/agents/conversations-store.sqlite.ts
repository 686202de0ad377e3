import type { Db } from '../db/database.js';
import { ConversationsRepo, type Conversation, type StoredMessage, type TurnRecord } from './conversations-repo.js';
import type { ConversationsStore, ConversationSummary } from './conversations-store.js';
import type { ChatMessage } from '../models/model-backend.js';

/**
 * ConversationsStore on SQLite: ConversationsRepo's statements and group commit, synchronous
 * inside (one process is the only writer: fences are ignored).
 */
export class SqliteConversationsStore implements ConversationsStore {
  readonly repo: ConversationsRepo;
  private readonly s;

  constructor(db: Db, log?: { error(obj: object, msg: string): void }) {
    this.repo = new ConversationsRepo(db, log);
    this.s = {
      list: db.prepare<[string, string, number, number], ConversationSummary>(`
        SELECT c.id, c.created_at, c.updated_at,
          (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS messages,
          (SELECT substr(m.content, 1, 80) FROM messages m WHERE m.conversation_id = c.id AND m.role = 'user' ORDER BY m.id LIMIT 1) AS title
        FROM conversations c WHERE c.nft_token_id = ? AND c.wallet = ?
        ORDER BY c.updated_at DESC, c.id LIMIT ? OFFSET ?`),
      count: db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM conversations WHERE nft_token_id = ? AND wallet = ?'),
    };
  }

  async get(id: string): Promise<Conversation | undefined> {
    return this.repo.get(id);
  }

  async owned(id: string, nft: string, wallet: string): Promise<Conversation> {
    return this.repo.owned(id, nft, wallet);
  }

  create(c: Conversation): void {
    this.repo.create(c);
  }

  appendCommitted(conversationId: string, role: StoredMessage['role'], content: string, tokens: number, incomplete: boolean, at: number, _fence?: unknown, turnId?: string): Promise<void> {
    return this.repo.appendCommitted(conversationId, role, content, tokens, incomplete, at, turnId);
  }

  async turnRecord(turnId: string): Promise<TurnRecord> {
    return this.repo.turnRecord(turnId);
  }

  async flush(): Promise<void> {
    this.repo.flush();
  }

  async page(conversationId: string, limit: number, offset: number): Promise<{ messages: StoredMessage[]; total: number }> {
    return this.repo.page(conversationId, limit, offset);
  }

  async context(conversationId: string, tokenBudget: number): Promise<ChatMessage[]> {
    return this.repo.context(conversationId, tokenBudget);
  }

  async contextTokens(conversationId: string, tokenBudget: number): Promise<number> {
    return this.repo.contextTokens(conversationId, tokenBudget);
  }

  async clear(conversationId: string): Promise<number> {
    return this.repo.clear(conversationId);
  }

  async list(nft: string, wallet: string, limit: number, offset: number): Promise<{ rows: ConversationSummary[]; total: number }> {
    return { rows: this.s.list.all(nft, wallet, limit, offset), total: this.s.count.get(nft, wallet)!.n };
  }
}
