import type { Sql } from '../db/pg.js';
import { FencedError, type Fence } from '../db/fence.js';
import { fenceCte } from '../db/fence-pg.js';
import { ApiError } from '../errors.js';
import { estimateTokens, type ChatMessage } from '../models/model-backend.js';
import { turnRecordOf, type Conversation, type StoredMessage, type TurnRecord, type QueuedMessage as SqliteQueuedMessage } from './conversations-repo.js';
import { fitContext, fitContextTokens, type ConversationsStore, type ConversationSummary } from './conversations-store.js';

/** The SQLite repo's queued message, plus the fence its PostgreSQL write is guarded by. */
interface QueuedMessage extends SqliteQueuedMessage {
  fence?: Fence;
}

interface Group {
  fence?: Fence;
  conversations: Conversation[];
  messages: QueuedMessage[];
}

const fenceKey = (f: Fence | undefined) => (f ? `${f.shard}:${f.epoch}:${f.node}` : '');

/**
 * ConversationsStore on PostgreSQL with group commit: everything queued while the previous batch
 * was in flight goes in the next, as ONE statement per fence (data-modifying CTEs over unnest()
 * arrays): the lease check, the new conversations, the messages and the touched updated_at commit
 * together or not at all, in one round trip. Each message gets the next `seq` of its conversation
 * (unique per conversation: a second writer appending "the next" message fails) and the fence's
 * epoch as `writer_epoch`.
 */
export class PgConversationsStore implements ConversationsStore {
  private messages: QueuedMessage[] = [];
  /** Conversations created but not yet committed (queued or in flight): visible to get() meanwhile. */
  private unsaved = new Map<string, { c: Conversation; fence?: Fence }>();
  private queuedConversations: string[] = [];
  private scheduled = false;
  private inFlight: Promise<void> | undefined;
  /**
   * Conversations seen here, by id: a conversation's NFT and wallet never change, so the ownership
   * check of a continued turn costs no round trip (updated_at is as of this node's last look).
   */
  private readonly known = new Map<string, Conversation>();
  private static readonly MAX_KNOWN = 100_000;

  constructor(private readonly sql: Sql, private readonly log?: { error(obj: object, msg: string): void }) {}

  async get(id: string): Promise<Conversation | undefined> {
    const u = this.unsaved.get(id);
    if (u) return u.c;
    const hit = this.known.get(id);
    if (hit) return hit;
    const rows = await this.sql<Conversation[]>`SELECT id, nft_token_id, wallet, created_at, updated_at FROM conversations WHERE id = ${id}`;
    if (rows[0]) this.know(rows[0]);
    return rows[0];
  }

  private know(c: Conversation): void {
    if (this.known.size >= PgConversationsStore.MAX_KNOWN) this.known.clear();
    this.known.set(c.id, c);
  }

  async owned(id: string, nft: string, wallet: string): Promise<Conversation> {
    const c = await this.get(id);
    if (!c || c.nft_token_id !== nft || c.wallet !== wallet.toLowerCase()) {
      throw new ApiError('NOT_FOUND', `Conversation ${id} not found`, { conversation_id: id });
    }
    return c;
  }

  create(c: Conversation, fence?: Fence): void {
    this.unsaved.set(c.id, { c, fence });
    this.queuedConversations.push(c.id);
    this.schedule();
  }

  appendCommitted(conversationId: string, role: StoredMessage['role'], content: string, tokens: number, incomplete: boolean, at: number, fence?: Fence, turnId?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.messages.push({ conversationId, role, content, tokens, incomplete, at, fence, turnId, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  /** Writes everything queued, after the batch in flight (one at a time keeps a conversation's writes in order). */
  async flush(): Promise<void> {
    this.scheduled = false;
    while (this.inFlight) await this.inFlight;
    if (this.queuedConversations.length === 0 && this.messages.length === 0) return;
    const run = this.write().finally(() => {
      this.inFlight = undefined;
    });
    this.inFlight = run;
    await run;
  }

  private async write(): Promise<void> {
    const convIds = this.queuedConversations;
    const batch = this.messages;
    this.queuedConversations = [];
    this.messages = [];
    const groups = new Map<string, Group>();
    const group = (f: Fence | undefined) => {
      const k = fenceKey(f);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { fence: f, conversations: [], messages: [] }));
      return g;
    };
    const created = new Set<string>();
    for (const id of convIds) {
      const u = this.unsaved.get(id);
      if (!u) continue;
      created.add(id);
      group(u.fence).conversations.push(u.c);
    }
    for (const m of batch) {
      group(m.fence).messages.push(m);
      const u = created.has(m.conversationId) ? this.unsaved.get(m.conversationId) : undefined;
      if (u) u.c.updated_at = Math.max(u.c.updated_at, m.at);
    }
    await Promise.all([...groups.values()].map((g) => this.writeGroup(g, created)));
    for (const id of created) this.unsaved.delete(id);
  }

  private async writeGroup(g: Group, created: Set<string>): Promise<void> {
    const sql = this.sql;
    const epoch = g.fence?.epoch ?? 0;
    const cs = g.conversations;
    const ms = g.messages;
    // Each conversation's updated_at is written once per batch (its newest message); one created
    // in this batch is inserted with it.
    const touched = new Map<string, number>();
    for (const m of ms) if (!created.has(m.conversationId)) touched.set(m.conversationId, Math.max(touched.get(m.conversationId) ?? 0, m.at));
    try {
      const [r] = await sql<{ ok: number }[]>`
        WITH f AS (${fenceCte(sql, g.fence)}),
        c AS (
          INSERT INTO conversations (id, nft_token_id, wallet, created_at, updated_at, writer_epoch)
          SELECT u.id, u.nft, u.wallet, u.created_at, u.updated_at, ${epoch}::bigint
          FROM unnest(${cs.map((c) => c.id)}::text[], ${cs.map((c) => c.nft_token_id)}::text[], ${cs.map((c) => c.wallet)}::text[],
            ${cs.map((c) => c.created_at)}::bigint[], ${cs.map((c) => c.updated_at)}::bigint[]) AS u(id, nft, wallet, created_at, updated_at), f
          RETURNING 1
        ),
        m AS (
          INSERT INTO messages (conversation_id, role, content, tokens, incomplete, created_at, writer_epoch, turn_id, seq)
          SELECT u.cid, u.role, u.content, u.tokens, u.incomplete, u.at, ${epoch}::bigint, u.turn,
            coalesce((SELECT max(x.seq) FROM messages x WHERE x.conversation_id = u.cid), 0) + row_number() OVER (PARTITION BY u.cid ORDER BY u.i)
          FROM unnest(${ms.map((m) => m.conversationId)}::text[], ${ms.map((m) => m.role)}::text[], ${ms.map((m) => m.content)}::text[],
            ${ms.map((m) => m.tokens)}::int[], ${ms.map((m) => (m.incomplete ? 1 : 0))}::int[], ${ms.map((m) => m.at)}::bigint[],
            ${ms.map((m) => m.turnId ?? null)}::text[])
            WITH ORDINALITY AS u(cid, role, content, tokens, incomplete, at, turn, i), f
          ORDER BY u.i
          RETURNING 1
        ),
        t AS (
          UPDATE conversations SET updated_at = greatest(conversations.updated_at, u.at)
          FROM unnest(${[...touched.keys()]}::text[], ${[...touched.values()]}::bigint[]) AS u(id, at), f
          WHERE conversations.id = u.id
          RETURNING 1
        )
        SELECT count(*)::int AS ok FROM f`;
      if (r!.ok === 0) throw new FencedError(g.fence!.shard, g.fence!.epoch);
    } catch (e) {
      if (!(e instanceof FencedError)) this.log?.error({ err: e, conversations: cs.length, messages: ms.length }, 'chat write batch failed');
      for (const c of cs) this.unsaved.delete(c.id);
      for (const m of ms) m.reject(e);
      return;
    }
    for (const c of cs) this.know(c);
    for (const [id, at] of touched) {
      const k = this.known.get(id);
      if (k) k.updated_at = Math.max(k.updated_at, at);
    }
    for (const m of ms) m.resolve();
  }

  async page(conversationId: string, limit: number, offset: number): Promise<{ messages: StoredMessage[]; total: number }> {
    const [messages, [count]] = await Promise.all([
      this.sql<StoredMessage[]>`
        SELECT id, conversation_id, role, content, tokens, incomplete, created_at FROM messages
        WHERE conversation_id = ${conversationId} ORDER BY id LIMIT ${limit} OFFSET ${offset}`,
      this.sql<{ n: number }[]>`SELECT count(*) AS n FROM messages WHERE conversation_id = ${conversationId}`,
    ]);
    return { messages, total: count!.n };
  }

  async turnRecord(turnId: string): Promise<TurnRecord> {
    return turnRecordOf(await this.sql<{ role: StoredMessage['role']; content: string; tokens: number; incomplete: number; created_at: number }[]>`
      SELECT role, content, tokens, incomplete, created_at FROM messages WHERE turn_id = ${turnId}`);
  }

  async context(conversationId: string, tokenBudget: number): Promise<ChatMessage[]> {
    const rows = await this.sql<{ role: StoredMessage['role']; content: string; tokens: number }[]>`
      SELECT role, content, tokens FROM messages WHERE conversation_id = ${conversationId} ORDER BY id DESC LIMIT 200`;
    return fitContext(rows, tokenBudget, estimateTokens);
  }

  async contextTokens(conversationId: string, tokenBudget: number): Promise<number> {
    const rows = await this.sql<{ tokens: number; chars: number }[]>`
      SELECT tokens, length(content) AS chars FROM messages WHERE conversation_id = ${conversationId} ORDER BY id DESC LIMIT 200`;
    return fitContextTokens(rows, tokenBudget);
  }

  async clear(conversationId: string, fence?: Fence): Promise<number> {
    const [r] = await this.sql<{ ok: number; n: number }[]>`
      WITH f AS (${fenceCte(this.sql, fence)}),
      d AS (DELETE FROM messages USING f WHERE conversation_id = ${conversationId} RETURNING 1)
      SELECT (SELECT count(*)::int FROM f) AS ok, (SELECT count(*)::int FROM d) AS n`;
    if (fence && r!.ok === 0) throw new FencedError(fence.shard, fence.epoch);
    return r!.n;
  }

  async list(nft: string, wallet: string, limit: number, offset: number): Promise<{ rows: ConversationSummary[]; total: number }> {
    const [rows, [count]] = await Promise.all([
      this.sql<ConversationSummary[]>`
        SELECT c.id, c.created_at, c.updated_at,
          (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS messages,
          (SELECT substr(m.content, 1, 80) FROM messages m WHERE m.conversation_id = c.id AND m.role = 'user' ORDER BY m.id LIMIT 1) AS title
        FROM conversations c WHERE c.nft_token_id = ${nft} AND c.wallet = ${wallet}
        ORDER BY c.updated_at DESC, c.id LIMIT ${limit} OFFSET ${offset}`,
      this.sql<{ n: number }[]>`SELECT count(*) AS n FROM conversations WHERE nft_token_id = ${nft} AND wallet = ${wallet}`,
    ]);
    return { rows, total: count!.n };
  }
}
