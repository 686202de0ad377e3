import * as v from 'valibot';
import { ApiError } from '../errors.js';
import { nftTokenId } from '../server/validation.js';
import type { AuthClaims } from '../server/route.js';
import type { WsConn, WsMessageHandler } from '../server/ws-server.js';
import type { ActorDirectory } from '../contracts/actor-directory.js';
import { AGENT_ACTOR, type AgentMsg, type TurnHandle, type TurnResult } from '../contracts/agent-messages.js';
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
      if (!msg.message) {
        if (!msg.conversation_id) throw new ApiError('MISSING_FIELD', 'Missing required field: conversation_id (or message)', { field: 'conversation_id' });
        followChat(conn, msg.conversation_id, nft);
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
          followChat(conn, final.conversation_id, nft);
          conn.send(b.body);
          return;
        }
        // Still streaming here: follow it (its remaining chunks and final frame come on the topic).
        if (b.kind === 'in_progress' && b.ref) return followChat(conn, b.ref, nft);
        if (b.kind !== 'new') throw notFinished(b, key);
      }
      const turn = new SocketTurn(conn, nft, store, key, scope, deps.turnTimeoutMs);
      let handle: TurnHandle;
      try {
        handle = await deps.actors.ask<TurnHandle>(AGENT_ACTOR, nft, {
          type: 'turn', wallet, conversationId: msg.conversation_id, message: msg.message, controller: turn.ac, opened: turn.opened,
        } satisfies AgentMsg);
      } catch (e) {
        turn.ended();
        if (store) await store.release(wallet, scope, key).catch(() => {});
        throw e;
      }
      void handle.done.then(turn.finished);
    },
  };
}

/**
 * `subscribed` acknowledges a new follow: a socket already following the conversation (its next
 * turn) is not told again. A turn's conversation has this socket as its only follower, so the
 * frame goes along with the first chunk (one socket write for both; see sendAlong).
 */
function followChat(conn: WsConn, conversationId: string, nft: string): void {
  const topic = chatTopic(conversationId);
  if (conn.subscribe(topic)) conn.sendAlong(topic, { type: 'subscribed', channel: 'chat', conversation_id: conversationId, nft_token_id: nft });
}

/** A socket turn's deadline passed (a module function: no closure per turn). */
function turnTimedOut(ac: TurnAbort): void {
  ac.abort(new ApiError('TIMEOUT', 'The reply ran past its deadline; what was written is stored as incomplete'));
}

/**
 * One turn sent over a socket, as one object: its abort (the socket going away, its deadline),
 * its idempotency record, and the two callbacks the agent calls. It stops when the socket goes
 * away, or at its deadline; it is dropped once over, so a socket running many turns keeps nothing
 * per past turn.
 */
class SocketTurn {
  readonly ac = new TurnAbort();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly conn: WsConn,
    private readonly nft: string,
    /** set when the turn carries a message_id */
    private readonly store: IdempotencyStore | undefined,
    private readonly key: string,
    private readonly scope: string,
    timeoutMs: number | undefined,
  ) {
    conn.onClose(this.ac);
    this.timer = timeoutMs ? setTimeout(turnTimedOut, timeoutMs, this.ac) : undefined;
    this.timer?.unref();
  }

  /** Runs inside the agent's mailbox: it must not throw (that would crash the actor). */
  readonly opened = (conversationId: string): void => {
    // The turn runs anyway if this fails; only the in-progress pointer is missing.
    this.store?.setRef(this.conn.auth.sub, this.scope, this.key, conversationId).catch(() => {});
    followChat(this.conn, conversationId, this.nft);
  };

  /** The turn is over (or was never admitted): the socket and the clock let go of it. */
  ended(): void {
    this.conn.offClose(this.ac);
    clearTimeout(this.timer);
  }

  readonly finished = (r: TurnResult): void => {
    this.ended();
    const store = this.store;
    if (!store) return;
    const wallet = this.conn.auth.sub;
    // The database gone (shutdown): the key stays pending and a retry is told so.
    const written = !r.stored ? store.release(wallet, this.scope, this.key)
      : r.error?.details.reason !== 'shutdown' ? store.complete(wallet, this.scope, this.key, r.error ? r.error.status : 200, new ChunkFrames(r.conversation_id, this.nft).last(r), r.conversation_id)
      : undefined;
    written?.catch(() => {});
  };
}
