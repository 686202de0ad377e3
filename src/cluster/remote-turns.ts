import { randomUUID } from 'node:crypto';
import { ApiError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ActorDirectory } from '../contracts/actor-directory.js';
import { AGENT_ACTOR, type TurnHandle, type TurnMsg, type TurnResult } from '../contracts/agent-messages.js';
import { ChunkFrames, chatTopic } from '../agents/chat-frames.js';
import type { FrameRelay } from './frame-relay.js';

/**
 * A chat turn whose agent runs on another node (issue 17, "contracts first").
 *
 * A turn's request carries things no wire can: the client's AbortSignal, the SSE listener that
 * takes the chunks, the `opened` callback. The receiving node keeps them and sends plain data:
 *
 * 1. it picks the conversation id (`newConversationId` when the turn opens one) and a turn id, and
 *    FOLLOWS the turn's frame topic `turn:<id>` (FrameRelay subject `panthers.frames.turn.<id>`)
 *    BEFORE forwarding the turn, so no frame can be published before it listens;
 * 2. the owner runs the turn as a local one and streams on that topic, batched per event-loop
 *    turn by FrameRelay: each chunk as a JSON string, a heartbeat `{"hb":1}` every second while
 *    the turn runs, and a final `{"result":{...}}` carrying the whole TurnResult (error as the
 *    spec's code/message/details);
 * 3. the receiving node hands the chunks to its listener in order, resolves `done` with the
 *    result, and forwards a cancel when its signal aborts (the client went away, a deadline);
 * 4. heard nothing for `silenceMs` (the owner died or was cut off): `done` resolves at once as
 *    an incomplete turn with SERVICE_UNAVAILABLE, and the conversation's local followers get a
 *    final frame, so a stream never hangs.
 *
 * Why a topic per turn and not the conversation's own `chat:<id>` frames: two turns of one
 * conversation can be in flight (the second queued behind the first) and a chat_chunk frame does
 * not say which turn it belongs to, nor does its final frame carry all of a TurnResult (usage,
 * truncation, whether anything was stored). The conversation's frames still reach WS followers on
 * every node through the node's FrameRelay, unchanged.
 */

/** What the owner sends on a turn topic, one JSON text per frame. */
type TurnFrame = string /* a chunk */ | { hb: 1 } | { result: WireTurnResult };

/** TurnResult as plain JSON: the ApiError as the spec's error body. */
export interface WireTurnResult extends Omit<TurnResult, 'error'> {
  error?: { code: string; message: string; details: Record<string, unknown> };
}

/** The forwarded turn: the data fields of a TurnMsg, and the turn id whose topic the owner streams on. */
export interface WireTurn {
  turn: string;
  msg: Omit<TurnMsg, 'signal' | 'listener' | 'opened'>;
}

export const HEARTBEAT = '{"hb":1}';

export function turnTopic(turnId: string): string {
  return `turn:${turnId}`;
}

export function toWireResult(r: TurnResult): WireTurnResult {
  const { error, ...rest } = r;
  return error ? { ...rest, error: { code: error.code, message: error.message, details: error.details } } : rest;
}

export function fromWireResult(w: WireTurnResult): TurnResult {
  const { error, ...rest } = w;
  return error ? { ...rest, error: new ApiError(error.code as ErrorCode, error.message, error.details ?? {}) } : rest;
}

export interface RemoteTurnOptions {
  /** the relay that carries turn frames (a FrameRelay whose local publish is `dispatch` below) */
  relay: FrameRelay;
  log: Logger;
  /** this node's own WS publish (followers of the conversation get a final frame if the owner is lost) */
  localPublish(topic: string, frame: string): void;
  /** owner side: heartbeat period while a turn runs */
  heartbeatMs?: number;
  /** receiving side: nothing heard for this long ends the turn incomplete */
  silenceMs?: number;
}

/** One turn streamed here from another node. */
class IncomingTurn {
  private text = '';
  private started = false;
  private readonly early: string[] = [];
  private delivering: Promise<void> = Promise.resolve();
  lastHeard = performance.now();
  settled = false;
  resolve!: (r: TurnResult) => void;
  readonly done = new Promise<TurnResult>((r) => (this.resolve = r));

  constructor(
    readonly id: string,
    readonly nft: string,
    readonly conversationId: string,
    private readonly onChunk: ((c: string) => void | Promise<void>) | undefined,
  ) {}

  /** The forwarded ask answered: chunks that came before it are delivered now, in order. */
  start(): void {
    this.started = true;
    for (const c of this.early.splice(0)) this.deliver(c);
  }

  chunk(content: string): void {
    this.text += content;
    if (this.started) this.deliver(content);
    else this.early.push(content);
  }

  private deliver(content: string): void {
    const onChunk = this.onChunk;
    if (!onChunk) return;
    // A slow SSE client: chunks wait here in order (the owner's model cannot be paused from here).
    this.delivering = this.delivering.then(() => onChunk(content)).catch(() => undefined);
  }

  /** Resolves once every chunk already received has been handed to the listener. */
  finish(r: TurnResult): void {
    if (this.settled) return;
    this.settled = true;
    void this.delivering.then(() => this.resolve(r));
  }

  partial(): string {
    return this.text;
  }
}

/**
 * Both halves of the cross-node turn. The receiving node calls `forward`; the owner's shard
 * handler calls `serve` and `cancel`.
 */
export class RemoteTurns {
  private readonly incoming = new Map<string, IncomingTurn>();
  private readonly running = new Map<string, AbortController>();
  private readonly heartbeatMs: number;
  private readonly silenceMs: number;
  private watchdog: NodeJS.Timeout | undefined;
  readonly stats = { forwarded: 0, served: 0, ownerLost: 0 };

  constructor(private readonly opts: RemoteTurnOptions) {
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.silenceMs = opts.silenceMs ?? 3500;
  }

  /** The FrameRelay's local publish for turn topics: frames of turns streamed to this node. */
  dispatch(topic: string, frame: string): void {
    const t = this.incoming.get(topic.slice(5));
    if (!t || t.settled) return;
    t.lastHeard = performance.now();
    let f: TurnFrame;
    try {
      f = JSON.parse(frame) as TurnFrame;
    } catch {
      return;
    }
    if (typeof f === 'string') t.chunk(f);
    else if ('result' in f) this.end(t, fromWireResult(f.result));
  }

  /**
   * Receiving node: follows the turn's topic, then forwards it with `ask` (the shard's forwarded
   * request), and answers the same TurnHandle a local turn does.
   */
  async forward(nft: string, msg: TurnMsg, ask: (wire: WireTurn) => Promise<{ conversation_id: string }>, cancel: (turn: string, reason?: ApiError) => void): Promise<TurnHandle> {
    const id = randomUUID();
    const conversationId = msg.conversationId ?? msg.newConversationId ?? randomUUID();
    const { signal, listener, opened, ...data } = msg;
    const wire: WireTurn = { turn: id, msg: msg.conversationId ? data : { ...data, newConversationId: conversationId } };
    const t = new IncomingTurn(id, nft, conversationId, listener ? (c) => listener.onChunk(c) : undefined);
    const topic = turnTopic(id);
    // Subscribed before the ask leaves: NATS handles one connection's SUB before its later request.
    try {
      this.opts.relay.follow(topic);
    } catch {
      throw new ApiError('SERVICE_UNAVAILABLE', 'This node has lost its link to the cluster; retry shortly', { reason: 'forward_failed' });
    }
    this.incoming.set(id, t);
    let reply: { conversation_id: string };
    try {
      reply = await ask(wire);
    } catch (e) {
      this.drop(t);
      throw e;
    }
    this.stats.forwarded++;
    this.arm();
    try {
      opened?.(reply.conversation_id);
    } catch (e) {
      this.opts.log.error({ err: e }, 'a turn\'s opened callback failed');
    }
    t.start();
    if (signal) {
      const onAbort = () => cancel(id, signal.reason instanceof ApiError ? signal.reason : undefined);
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        void t.done.then(() => signal.removeEventListener('abort', onAbort));
      }
    }
    return { conversation_id: reply.conversation_id, done: t.done };
  }

  private end(t: IncomingTurn, r: TurnResult): void {
    this.drop(t);
    t.finish(r);
  }

  private drop(t: IncomingTurn): void {
    if (this.incoming.get(t.id) === t) {
      this.incoming.delete(t.id);
      try {
        this.opts.relay.unfollow(turnTopic(t.id));
      } catch {
        // the connection is already closed: nothing to unsubscribe
      }
    }
    if (this.incoming.size === 0 && this.watchdog) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
    }
  }

  /** One timer for every incoming turn: an owner silent past silenceMs is gone. */
  private arm(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => {
      const now = performance.now();
      for (const t of [...this.incoming.values()]) {
        if (now - t.lastHeard > this.silenceMs) this.ownerLost(t);
      }
    }, Math.max(50, Math.min(this.heartbeatMs, this.silenceMs / 3)));
    this.watchdog.unref();
  }

  private ownerLost(t: IncomingTurn): void {
    this.stats.ownerLost++;
    const error = new ApiError('SERVICE_UNAVAILABLE', 'The node running this agent stopped answering; the reply is incomplete', { reason: 'owner_lost' });
    const result: TurnResult = {
      response: t.partial(), conversation_id: t.conversationId, timestamp: new Date().toISOString(), tokens_used: 0, incomplete: true, error,
      // The user's message was most likely stored by the owner before the model started.
      stored: true,
    };
    this.opts.log.warn({ nft: t.nft, conversation: t.conversationId, turn: t.id }, 'owner of a forwarded chat turn went silent; ending it incomplete');
    try {
      this.opts.localPublish(chatTopic(t.conversationId), new ChunkFrames(t.conversationId, t.nft).last(result));
    } catch {
      // followers only
    }
    this.end(t, result);
  }

  /**
   * Owner node: runs a forwarded turn as a local one (`local` is this node's registry) and
   * streams it on the turn's topic. Answers once the turn is queued, as a local ask does.
   */
  async serve(local: ActorDirectory, nft: string, wire: WireTurn, timeoutMs?: number): Promise<{ conversation_id: string }> {
    const topic = turnTopic(wire.turn);
    const relay = this.opts.relay;
    const ac = new AbortController();
    this.running.set(wire.turn, ac);
    let handle: TurnHandle;
    try {
      handle = await local.ask<TurnHandle>(AGENT_ACTOR, nft, {
        ...wire.msg, type: 'turn', signal: ac.signal,
        listener: { onChunk: (c) => relay.publish(topic, JSON.stringify(c)) },
      } satisfies TurnMsg, timeoutMs);
    } catch (e) {
      this.running.delete(wire.turn);
      throw e;
    }
    this.stats.served++;
    const hb = setInterval(() => relay.publish(topic, HEARTBEAT), this.heartbeatMs);
    hb.unref();
    void handle.done.then((r) => {
      clearInterval(hb);
      this.running.delete(wire.turn);
      relay.publish(topic, JSON.stringify({ result: toWireResult(r) }));
    });
    return { conversation_id: handle.conversation_id };
  }

  /** Owner node: the receiving node's client went away (no reason) or its deadline passed. */
  cancel(turn: string, reason?: { code: string; message: string; details?: Record<string, unknown> }): boolean {
    const ac = this.running.get(turn);
    if (!ac) return false;
    ac.abort(reason ? new ApiError(reason.code as ErrorCode, reason.message, reason.details ?? {}) : undefined);
    return true;
  }

  /** Ends every turn streamed here now (this node is shutting down). */
  close(): void {
    for (const t of [...this.incoming.values()]) {
      this.end(t, {
        response: t.partial(), conversation_id: t.conversationId, timestamp: new Date().toISOString(), tokens_used: 0, incomplete: true, stored: true,
        error: new ApiError('SERVICE_UNAVAILABLE', 'The server is shutting down', { reason: 'shutdown' }),
      });
    }
  }
}
