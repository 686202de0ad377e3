import * as v from 'valibot';
import { ApiError } from '../errors.js';
import { nftTokenId } from '../server/validation.js';
import type { AuthClaims } from '../server/route.js';
import type { WsConn, WsMessageHandler } from '../server/ws-server.js';
import type { ActorRegistry } from '../../actors/registry.js';
import { AGENT_ACTOR, type AgentMsg, type TurnHandle } from '../../actors/agent-actor.js';
import type { ConversationsRepo } from './conversations-repo.js';
import { chatTopic } from './chat-frames.js';
import { chatMessageSchema, conversationIdSchema } from './chat-message.js';

/** The same message schema as POST /chat (one limit for both transports). */
function chatStreamMsg(maxMessageChars: number) {
  return v.object({
    type: v.literal('chat_stream'),
    conversation_id: v.optional(conversationIdSchema),
    nft_token_id: v.optional(nftTokenId),
    message: v.optional(chatMessageSchema(maxMessageChars)),
  });
}

export interface ChatStreamDeps {
  actors: ActorRegistry;
  conversations: ConversationsRepo;
  /** PANTHERS_MAX_MESSAGE_CHARS, as POST /chat applies it */
  maxMessageChars: number;
  /** Whether this NFT's agent runs here. */
  available(nft: string): boolean;
  /** Throws FORBIDDEN unless the caller may use this NFT's agent. */
  authorize(auth: AuthClaims, nft: string): Promise<void>;
}

/**
 * The `chat_stream` WS message, for the orchestrator's embedded agents and a standalone agent
 * alike: follow a conversation's chunks and, with `message`, send a turn over the socket.
 */
export function chatStreamHandler(deps: ChatStreamDeps): WsMessageHandler<v.InferOutput<ReturnType<typeof chatStreamMsg>>> {
  return {
    schema: chatStreamMsg(deps.maxMessageChars),
    rateClass: 'chat',
    async handle(conn: WsConn, msg) {
      const nft = msg.nft_token_id ?? conn.auth.nft;
      await deps.authorize(conn.auth, nft);
      if (!deps.available(nft)) throw new ApiError('NOT_FOUND', `No agent is running for NFT ${nft}`);
      if (msg.conversation_id) deps.conversations.owned(msg.conversation_id, nft, conn.auth.sub);
      const follow = (id: string) => {
        conn.subscribe(chatTopic(id));
        conn.send({ type: 'subscribed', channel: 'chat', conversation_id: id, nft_token_id: nft });
      };
      if (!msg.message) {
        if (!msg.conversation_id) throw new ApiError('MISSING_FIELD', 'Missing required field: conversation_id (or message)', { field: 'conversation_id' });
        follow(msg.conversation_id);
        return;
      }
      // A turn sent over the socket stops when the socket goes away.
      const ac = new AbortController();
      conn.onClose(() => ac.abort());
      await deps.actors.ask<TurnHandle>(AGENT_ACTOR, nft, {
        type: 'turn', wallet: conn.auth.sub, conversationId: msg.conversation_id, message: msg.message, signal: ac.signal, opened: follow,
      } satisfies AgentMsg);
    },
  };
}
