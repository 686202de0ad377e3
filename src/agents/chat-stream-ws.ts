import * as v from 'valibot';
import { ApiError } from '../errors.js';
import { nftTokenId } from '../server/validation.js';
import type { AuthClaims } from '../server/route.js';
import type { WsConn, WsMessageHandler } from '../server/ws-server.js';
import type { ActorDirectory } from '../contracts/actor-directory.js';
import { AGENT_ACTOR, type AgentMsg, type TurnHandle } from '../contracts/agent-messages.js';
import type { ConversationsStore } from './conversations-store.js';
import { chatTopic, ChunkFrames } from './chat-frames.js';
import { chatMessageSchema, conversationIdSchema } from './chat-message.js';
import { IdempotencyStore, notFinished } from '../guards/idempotency.js';
import { TurnAbort } from '../models/turn-abort.js';

/** The same message schema as POST /chat (one limit for both transports). */
function chatStreamMsg(maxMessageChars: number) {
  return v.object({
    type: v.literal('chat_stream'),
    conversation_id: v.optional(conversationIdSchema),
    nft_token_id: v.optional(nftTokenId),
    message: v.optional(chatMessageSchema(maxMessageChars)),
    /** Makes a resent turn idempotent: the same id answers the first attempt instead of running again. */
    message_id: v.optional(v.pipe(v.string('must be a string'), v.regex(/^[\x21-\x7e]{1,255}$/, 'must be 1 to 255 printable ASCII characters without spaces'))),
  });
}

export interface ChatStreamDeps {
  actors: ActorDirectory;
  conversations: ConversationsStore;
  /** PANTHERS_MAX_MESSAGE_CHARS, as POST /chat applies it */
  maxMessageChars: number;
  /** Whether this NFT's agent runs (a cluster node that does not own it asks the store). */
  available(nft: string): boolean | Promise<boolean>;
  /** Throws FORBIDDEN unless the caller may use this NFT's agent. */
  authorize(auth: AuthClaims, nft: string): Promise<void>;
  /** Remembers turns sent with a message_id. */
  idempotency?: IdempotencyStore;
  /** A turn sent over the socket is cut short (stored incomplete, final frame TIMEOUT) after this long. */
  turnTimeoutMs?: number;
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
      const up = deps.available(nft);
      if (up !== true && !(await up)) throw new ApiError('NOT_FOUND', `No agent is running for NFT ${nft}`);
      if (msg.conversation_id) await deps.conversations.owned(msg.conversation_id, nft, conn.auth.sub);
      // `subscribed` acknowledges a new follow: a socket already following the conversation (its
      // next turn) is not told again. A turn's conversation has this socket as its only follower,
      // so the frame goes along with the first chunk (one socket write for both; see sendAlong).
      const follow = (id: string) => {
        const topic = chatTopic(id);
        if (conn.subscribe(topic)) conn.sendAlong(topic, { type: 'subscribed', channel: 'chat', conversation_id: id, nft_token_id: nft });
      };
      if (!msg.message) {
        if (!msg.conversation_id) throw new ApiError('MISSING_FIELD', 'Missing required field: conversation_id (or message)', { field: 'conversation_id' });
        follow(msg.conversation_id);
        return;
      }
      const wallet = conn.auth.sub;
      const store = msg.message_id ? deps.idempotency : undefined;
      const key = msg.message_id!;
      const scope = `ws chat_stream ${nft}`;
      if (store) {
        const b = await store.begin(wallet, scope, key, IdempotencyStore.fingerprint({ message: msg.message, conversation_id: msg.conversation_id ?? null }));
        if (b.kind === 'replay') {
          // The first attempt's last frame, to this socket only.
          const final = JSON.parse(b.body) as { conversation_id: string };
          follow(final.conversation_id);
          conn.send(b.body);
          return;
        }
        // Still streaming here: follow it (its remaining chunks and final frame come on the topic).
        if (b.kind === 'in_progress' && b.ref) return follow(b.ref);
        if (b.kind !== 'new') throw notFinished(b, key);
      }
      // A turn sent over the socket stops when the socket goes away, or at its deadline.
      const ac = new TurnAbort();
      // Dropped once the turn is over: a socket running many turns keeps no closure per past turn.
      const off = conn.onClose(() => ac.abort());
      const timer = deps.turnTimeoutMs
        ? setTimeout(() => ac.abort(new ApiError('TIMEOUT', 'The reply ran past its deadline; what was written is stored as incomplete')), deps.turnTimeoutMs)
        : undefined;
      timer?.unref();
      let handle: TurnHandle;
      try {
        handle = await deps.actors.ask<TurnHandle>(AGENT_ACTOR, nft, {
          type: 'turn', wallet, conversationId: msg.conversation_id, message: msg.message, controller: ac,
          // Runs inside the agent's mailbox: it must not throw (that would crash the actor).
          opened: (id) => {
            // The turn runs anyway if this fails; only the in-progress pointer is missing.
            store?.setRef(wallet, scope, key, id).catch(() => {});
            follow(id);
          },
        } satisfies AgentMsg);
      } catch (e) {
        off();
        clearTimeout(timer);
        if (store) await store.release(wallet, scope, key).catch(() => {});
        throw e;
      }
      void handle.done.then((r) => {
        off();
        clearTimeout(timer);
        if (!store) return;
        // The database gone (shutdown): the key stays pending and a retry is told so.
        const written = !r.stored ? store.release(wallet, scope, key)
          : r.error?.details.reason !== 'shutdown' ? store.complete(wallet, scope, key, r.error ? r.error.status : 200, new ChunkFrames(r.conversation_id, nft).last(r), r.conversation_id)
          : undefined;
        written?.catch(() => {});
      });
    },
  };
}
