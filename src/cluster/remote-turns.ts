import { randomUUID } from 'node:crypto';
import { uuidv7 } from '../db/time-ordered-id.js';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { ApiError, ERROR_CODES, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ActorDirectory } from '../contracts/actor-directory.js';
import { AGENT_ACTOR, type TurnHandle, type TurnMsg, type TurnResult } from '../contracts/agent-messages.js';
import { ChunkFrames, chatTopic } from '../agents/chat-frames.js';
import type { FrameRelay } from './frame-relay.js';
import { TurnAbort } from '../models/turn-abort.js';

/**
 * A chat turn whose agent runs on another node (issue 17, "contracts first").
 *
 * A turn's request carries things no wire can: the client's AbortSignal, the SSE listener that
 * takes the chunks, the `opened` callback. The receiving node keeps them and sends plain data:
 *
 * 1. it picks the conversation id (`newConversationId` when the turn opens one) and a turn id
 *    `<node tag>:<uuid>`, and listens for the turn's frames BEFORE forwarding the turn, so no
 *    frame can be published before it listens. One wildcard subscription per node
 *    (`panthers.frames.turn.<tag>.>`), made before its first forwarded turn, serves all of them:
 *    no SUB/UNSUB per turn;
 * 2. the owner runs the turn as a local one under a run id of its own and streams on the topic
 *    `turn:<tag>:<uuid>:<run>` (subject `...turn.<tag>.<uuid>.<run>`), batched per event-loop
 *    turn by FrameRelay: each chunk as a JSON string, a heartbeat `{"hb":1}` every second while
 *    the turn runs, and a final `{"result":{...}}` carrying the whole TurnResult (error as the
 *    spec's code/message/details). Its answer to the forward names the run;
 * 3. the receiving node hands the chunks OF THAT RUN to its listener in order (frames that came
 *    before the answer wait for it), resolves `done` with the result, and forwards a cancel when
 *    its signal aborts (the client went away, a deadline). A turn sent again through a failover
 *    can have reached two owners; only the run whose answer came is heard, so two streams never
 *    mix. The second owner finds what the first stored by the turn id (AgentBehaviour, `resent`);
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
  msg: Omit<TurnMsg, 'signal' | 'controller' | 'listener' | 'opened'>;
}

/** The owner's answer to a forwarded turn: the turn is queued there, streaming as `run`. */
export interface WireTurnAnswer {
  conversation_id: string;
  run: string;
}

export const HEARTBEAT = '{"hb":1}';

/** Frames a receiving node keeps for a turn whose forward is not answered yet. */
const MAX_EARLY_FRAMES = 10_000;

/** The topic one owner's run of a turn streams on. */
export function turnTopic(turnId: string, run: string): string {
  return `turn:${turnId}:${run}`;
}

export function toWireResult(r: TurnResult): WireTurnResult {
  const { error, ...rest } = r;
  return error ? { ...rest, error: { code: error.code, message: error.message, details: error.details } } : rest;
}

export function fromWireResult(w: WireTurnResult): TurnResult {
  const { error, ...rest } = w;
  return error ? { ...rest, error: wireError(error) } : rest;
}

/** The spec's error from another node's JSON; a code this build does not know is an INTERNAL_ERROR. */
export function wireError(e: { code: string; message: string; details?: Record<string, unknown> }): ApiError {
  if (!Object.hasOwn(ERROR_CODES, e.code)) return new ApiError('INTERNAL_ERROR');
  return new ApiError(e.code as ErrorCode, typeof e.message === 'string' ? e.message : undefined, e.details && typeof e.details === 'object' ? e.details : {});
}

export interface RemoteTurnOptions {
  /** owner side: the relay that batches turn frames per event-loop turn (its local publish can be a no-op) */
  relay: FrameRelay;
  /** receiving side: the connection that takes turn frames streamed to this node */
  nc: NatsConnection;
  subjectPrefix?: string;
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
  /** the run whose answer came (undefined: not answered yet) */
  run: string | undefined;
  /** frames that came before the answer, with the run they belong to */
  early: { run: string; frame: string }[] = [];
  /** set while the listener is paused on a chunk (a slow SSE client): later chunks wait behind it */
  private delivering: Promise<void> | undefined;
  lastHeard = performance.now();
  /** the forward was answered (the owner queued the turn): only then can the owner fall silent */
  answered = false;
  settled = false;
  /** asks the owner to stop the turn (set once the forward was answered) */
  cancel: ((reason?: ApiError) => void) | undefined;
  resolve!: (r: TurnResult) => void;
  readonly done = new Promise<TurnResult>((r) => (this.resolve = r));

  constructor(
    readonly id: string,
    readonly nft: string,
    readonly conversationId: string,
    private readonly onChunk: ((c: string) => void | Promise<void>) | undefined,
  ) {}

  chunk(content: string): void {
    this.text += content;
    this.deliver(content);
  }

  private deliver(content: string): void {
    const onChunk = this.onChunk;
    if (!onChunk) return;
    // A slow SSE client: chunks wait here in order (the owner's model cannot be paused from here).
    if (this.delivering) {
      const p: Promise<void> = this.delivering.then(() => onChunk(content)).catch(() => undefined).then(() => {
        if (this.delivering === p) this.delivering = undefined;
      });
      this.delivering = p;
      return;
    }
    // The common case: nothing waiting, no promise per chunk.
    try {
      const wait = onChunk(content);
      if (wait) {
        const p: Promise<void> = wait.catch(() => undefined).then(() => {
          if (this.delivering === p) this.delivering = undefined;
        });
        this.delivering = p;
      }
    } catch {
      // a listener that throws loses its chunk, not the turn
    }
  }

  /** Resolves once every chunk already received has been handed to the listener. */
  finish(r: TurnResult): void {
    if (this.settled) return;
    this.settled = true;
    if (this.delivering) void this.delivering.then(() => this.resolve(r));
    else this.resolve(r);
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
  /** the runs served here per turn id: a turn resent through a failover can reach this owner twice */
  private readonly running = new Map<string, Set<TurnAbort>>();
  private readonly heartbeatMs: number;
  private readonly silenceMs: number;
  private watchdog: NodeJS.Timeout | undefined;
  /** names this node in the turn ids it forwards (the subject its turn frames come back on) */
  private readonly tag = randomUUID().replace(/-/g, '').slice(0, 16);
  private sub: Subscription | undefined;
  readonly stats = { forwarded: 0, served: 0, ownerLost: 0 };

  constructor(private readonly opts: RemoteTurnOptions) {
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.silenceMs = opts.silenceMs ?? 3500;
  }

  /** Frames of the turns streamed to this node, one NATS message per owner event-loop turn. */
  private listen(): void {
    if (this.sub) return;
    const dec = new TextDecoder();
    this.sub = this.opts.nc.subscribe(`${this.opts.subjectPrefix ?? 'panthers'}.frames.turn.${this.tag}.>`, {
      callback: (err, m) => {
        if (err) return;
        // `...turn.<tag>.<uuid>.<run>`
        const dot = m.subject.lastIndexOf('.');
        const run = m.subject.slice(dot + 1);
        const t = this.incoming.get(`${this.tag}:${m.subject.slice(m.subject.lastIndexOf('.', dot - 1) + 1, dot)}`);
        if (!t || t.settled) return;
        if (t.run !== undefined && run !== t.run) return; // another owner's run of a resent turn
        const text = dec.decode(m.data);
        let start = 0;
        for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', start)) {
          this.dispatch(t, run, text.slice(start, i));
          start = i + 1;
        }
        this.dispatch(t, run, text.slice(start));
      },
    });
  }

  private dispatch(t: IncomingTurn, run: string, frame: string): void {
    if (t.settled) return;
    if (t.run === undefined) {
      // Normally empty: the owner's answer leaves before its first frame (one connection, in
      // order); what comes first is another owner's run. Bounded all the same.
      if (t.early.length < MAX_EARLY_FRAMES) t.early.push({ run, frame });
      return;
    }
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
   * Receiving node: listens for the turn's frames, then forwards it with `ask` (the shard's forwarded
   * request), and answers the same TurnHandle a local turn does.
   */
  async forward(nft: string, msg: TurnMsg, ask: (wire: WireTurn) => Promise<WireTurnAnswer>, cancel: (turn: string, reason?: ApiError) => void): Promise<TurnHandle> {
    // The caller's turn id when it is one of this node's (its frames come back here), else a new one.
    const id = msg.turnId?.startsWith(`${this.tag}:`) ? msg.turnId : this.newTurnId();
    const conversationId = msg.conversationId ?? msg.newConversationId ?? uuidv7();
    const { signal, controller, listener, opened, ...data } = msg;
    const wire: WireTurn = { turn: id, msg: msg.conversationId ? { ...data, turnId: id } : { ...data, turnId: id, newConversationId: conversationId } };
    const t = new IncomingTurn(id, nft, conversationId, listener ? (c) => listener.onChunk(c) : undefined);
    // Subscribed before the ask leaves: NATS handles one connection's SUB before its later request.
    try {
      this.listen();
    } catch {
      throw new ApiError('SERVICE_UNAVAILABLE', 'This node has lost its link to the cluster; retry shortly', { reason: 'forward_failed' });
    }
    this.incoming.set(id, t);
    // The conversation's frames (chat:<id>) reach this node's WS followers through the node's
    // FrameRelay only while a local socket follows the topic: `opened` subscribes it, so it runs
    // BEFORE the turn leaves (the id is chosen here), else the first chunks of a fast reply are
    // published on the owner before this node follows and are lost.
    try {
      opened?.(conversationId);
    } catch (e) {
      this.opts.log.error({ err: e }, 'a turn\'s opened callback failed');
    }
    let reply: WireTurnAnswer;
    try {
      reply = await ask(wire);
    } catch (e) {
      this.drop(t);
      throw e;
    }
    this.stats.forwarded++;
    // The silence window starts now: a forward retried through a failover is not silence.
    t.lastHeard = performance.now();
    t.answered = true;
    t.cancel = (reason) => cancel(id, reason);
    this.arm();
    // The run that answered is the one heard; what it sent before the answer is handled now, in order.
    t.run = typeof reply.run === 'string' ? reply.run : '';
    for (const e of t.early.splice(0)) if (e.run === t.run) this.dispatch(t, e.run, e.frame);
    // Cancelled through the caller's TurnAbort, or one that follows its signal.
    const abort = controller ?? (signal ? new TurnAbort() : undefined);
    if (abort) {
      const unfollow = !controller && signal ? abort.follow(signal) : undefined;
      const off = abort.onAbort(() => cancel(id, abort.reason instanceof ApiError ? abort.reason : undefined));
      void t.done.then(() => {
        off();
        unfollow?.();
      });
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
    }
    if (this.incoming.size === 0 && this.watchdog) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
    }
  }

  /** A turn id of this node: its frames come back to this node's subscription. */
  newTurnId(): string {
    return `${this.tag}:${uuidv7()}`;
  }

  /** One timer for every incoming turn: an owner silent past silenceMs is gone. */
  private arm(): void {
    if (this.watchdog) return;
    const period = Math.max(50, Math.min(this.heartbeatMs, this.silenceMs / 3));
    let last = performance.now();
    this.watchdog = setInterval(() => {
      const now = performance.now();
      const late = now - last > 2 * period;
      last = now;
      // This node's own event loop stood still (GC, a busy start, a loaded machine): timers run
      // before the socket is read, so the frames that came meanwhile are not handled yet. What
      // this node did not listen for is not the owner's silence: judge on the next round.
      if (late) return;
      for (const t of [...this.incoming.values()]) {
        // A turn whose forward is still being retried (no owner yet, a handoff) is waiting for
        // its ask's deadline, not for an owner: ending it here told the client owner_lost while
        // the retried forward then ran the turn on the next owner.
        if (t.answered && now - t.lastHeard > this.silenceMs) this.ownerLost(t);
      }
    }, period);
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
    // Silent is not always dead (its frames may be what was lost): ask it to stop, best effort,
    // so it does not go on calling the model and store a reply this client was told is incomplete.
    try {
      t.cancel?.(error);
    } catch {
      // the link is gone too
    }
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
  async serve(local: ActorDirectory, nft: string, wire: WireTurn, timeoutMs?: number, resent = false): Promise<WireTurnAnswer> {
    // The id becomes part of a NATS subject: nothing but the shape forward() makes.
    if (typeof wire?.turn !== 'string' || !/^[A-Za-z0-9]{1,32}:[A-Za-z0-9-]{1,64}$/.test(wire.turn) || typeof wire.msg !== 'object' || wire.msg === null) {
      throw new ApiError('INVALID_REQUEST', 'malformed forwarded turn');
    }
    const run = randomUUID().slice(0, 8);
    const topic = turnTopic(wire.turn, run);
    const relay = this.opts.relay;
    const ac = new TurnAbort();
    let runs = this.running.get(wire.turn);
    if (!runs) this.running.set(wire.turn, (runs = new Set()));
    runs.add(ac);
    const forget = () => {
      runs.delete(ac);
      if (runs.size === 0 && this.running.get(wire.turn) === runs) this.running.delete(wire.turn);
    };
    let handle: TurnHandle;
    try {
      handle = await local.ask<TurnHandle>(AGENT_ACTOR, nft, {
        ...wire.msg, type: 'turn', turnId: wire.turn, resent, controller: ac,
        listener: { onChunk: (c) => relay.publish(topic, JSON.stringify(c)) },
      } satisfies TurnMsg, timeoutMs);
    } catch (e) {
      forget();
      throw e;
    }
    this.stats.served++;
    const hb = setInterval(() => relay.publish(topic, HEARTBEAT), this.heartbeatMs);
    hb.unref();
    void handle.done.then((r) => {
      clearInterval(hb);
      forget();
      relay.publish(topic, JSON.stringify({ result: toWireResult(r) }));
    });
    return { conversation_id: handle.conversation_id, run };
  }

  /** Owner node: the receiving node's client went away (no reason) or its deadline passed. */
  cancel(turn: string, reason?: { code: string; message: string; details?: Record<string, unknown> }): boolean {
    const runs = this.running.get(turn);
    if (!runs) return false;
    // Every run of it here: the receiving node hears only one, and the others answer nobody.
    for (const ac of [...runs]) ac.abort(reason ? wireError(reason) : undefined);
    return true;
  }

  /** Ends every turn streamed here now (this node is shutting down). */
  close(): void {
    try {
      this.sub?.unsubscribe();
    } catch {
      // already closed
    }
    this.sub = undefined;
    for (const t of [...this.incoming.values()]) {
      this.end(t, {
        response: t.partial(), conversation_id: t.conversationId, timestamp: new Date().toISOString(), tokens_used: 0, incomplete: true, stored: true,
        error: new ApiError('SERVICE_UNAVAILABLE', 'The server is shutting down', { reason: 'shutdown' }),
      });
    }
  }
}
