import * as v from 'valibot';
import type { ConversationsStore } from '../agents/conversations-store.js';
import { ApiError } from '../errors.js';
import { route, type Request, type RouteDef } from '../server/route.js';
import { intParam } from '../server/validation.js';
import type { AuthClaims } from '../server/route.js';

export interface ConversationListDeps {
  conversations: ConversationsStore;
  /** Throws FORBIDDEN unless the caller may use this NFT's agent (the same rule as /chat). */
  authorize(auth: AuthClaims, nft: string): Promise<void>;
}

/**
 * GET /conversations on the Agent API: the caller's conversations with this NFT's agent, most
 * recent first, with a title (the start of the first message) so a client can offer them. The
 * spec gives history by conversation id but no way to find the ids again after a reload.
 */
export function conversationListRoutes(deps: ConversationListDeps): RouteDef[] {
  return [
    route({
      method: 'GET', path: '/conversations', rateClass: 'chat', auth: 'required', tags: ['agent'],
      summary: "The caller's conversations with this agent, most recent first",
      query: v.object({ limit: intParam(1, 100, 20), offset: intParam(0, 1_000_000_000, 0) }),
      response: v.object({
        data: v.array(v.object({ conversation_id: v.string(), title: v.string(), messages: v.number(), created_at: v.string(), updated_at: v.string() })),
        pagination: v.object({ total: v.number(), limit: v.number(), offset: v.number(), has_more: v.boolean() }),
      }),
      async handler(req: Request<unknown, { limit: number; offset: number }>) {
        const nft = req.agentNft;
        if (nft === undefined) throw new ApiError('NOT_FOUND', 'No agent addressed');
        await deps.authorize(req.auth!, nft);
        const wallet = req.auth!.sub.toLowerCase();
        const { limit, offset } = req.query;
        const { rows, total } = await deps.conversations.list(nft, wallet, limit, offset);
        return {
          data: rows.map((r) => ({
            conversation_id: r.id, title: r.title ?? '', messages: r.messages,
            created_at: new Date(r.created_at).toISOString(), updated_at: new Date(r.updated_at).toISOString(),
          })),
          pagination: { total, limit, offset, has_more: offset + rows.length < total },
        };
      },
    }),
  ];
}
