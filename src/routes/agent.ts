import * as v from 'valibot';
import { ApiError, toApiError } from '../errors.js';
import { json, route, type Request, type RouteDef, type SseSink } from '../server/route.js';
import { intParam } from '../server/validation.js';
import { VERSION } from '../version.js';
import { AGENT_ACTOR, type AgentMsg, type ClearHandle, type TurnHandle, type TurnListener, type TurnResult } from '../contracts/agent-messages.js';
import type { ConversationsStore } from '../agents/conversations-store.js';
import type { AgentSettings } from '../providers/provider.js';
import { sseChunk } from '../agents/chat-frames.js';
import { chatMessageSchema, conversationIdSchema } from '../agents/chat-message.js';
import type { ActorDirectory } from '../contracts/actor-directory.js';
import type { AuthClaims } from '../server/route.js';
import type { UsageView } from '../guards/quota.js';
import { IdempotencyStore, notFinished } from '../guards/idempotency.js';
import { TurnAbort } from '../models/turn-abort.js';

export interface AgentRouteDeps {
  actors: ActorDirectory;
  conversations: ConversationsStore;
  maxMessageChars: number;
  startedAt: number;
  now(): number;
  /**
   * Whether this NFT's agent is running (embedded: mounted by a local deployment). One process
   * answers at once; a cluster node that does not own the NFT asks the store.
   */
  available(nft: string): boolean | Promise<boolean>;
  /** Throws FORBIDDEN unless the caller may use this NFT's agent. */
  authorize(auth: AuthClaims, nft: string): Promise<void>;
  /** Today's token usage and budget of an NFT. */
  usage?(nft: string): UsageView | Promise<UsageView>;
  /** Remembers results of POST /chat sent with an Idempotency-Key. */
  idempotency?: IdempotencyStore;
}

/** Longest an HTTP stream waits for a slow reader to drain before giving up on it. */
const SSE_DRAIN_TIMEOUT_MS = 30_000;

const conversationId = conversationIdSchema;

const turnResponse = v.object({ response: v.string(), conversation_id: v.string(), timestamp: v.string(), tokens_used: v.number() });

/**
 * Bridges a turn's chunks to an SSE response that may be attached a moment after the turn starts.
 * The frames are the spec's; the OpenAI-compatible route renders its own (frame / finalFrames).
 */
export class SseBridge implements TurnListener {
  private sink: SseSink | undefined;
  private pending: string[] = [];
  /** resolves the chunk waiting for the socket to drain, if one is */
  private wake: (() => void) | undefined;
  readonly abort = new TurnAbort();

  attach(sink: SseSink): void {
    this.sink = sink;
    // One abort handler for the stream's life (not one per backed-up chunk).
    sink.onAbort(() => {
      this.abort.abort();
      this.wake?.();
    });
    sink.onDeadline(() => this.abort.abort(new ApiError('TIMEOUT', 'The reply ran past its deadline; what was written is stored as incomplete')));
    for (const c of this.pending) sink.send(this.frame(c));
    this.pending = [];
  }

  onChunk(content: string): void | Promise<void> {
    const sink = this.sink;
    if (!sink) {
      this.pending.push(content);
      return;
    }
    if (sink.send(this.frame(content))) return;
    // Backed up: pause the model until the socket drains (bounded), so memory stays flat.
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.abort.abort();
        done();
      }, SSE_DRAIN_TIMEOUT_MS);
      const done = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
      sink.onDrain(done);
    });
  }

  fail(e: unknown): void {
    const sink = this.sink;
    if (!sink || sink.aborted) return;
    const err = toApiError(e);
    sink.send(JSON.stringify({ done: true, incomplete: true, error: { code: err.code, message: err.message, details: err.details } }));
    sink.end();
  }

  finish(result: TurnResult): void {
    const sink = this.sink;
    if (!sink || sink.aborted) return;
    for (const f of this.finalFrames(result)) sink.send(f);
    sink.end();
  }

  /** The `data:` payload of one chunk. */
  protected frame(content: string): string {
    return sseChunk(content);
  }

  /** The payloads that end the stream. */
  protected finalFrames(result: TurnResult): string[] {
    return [JSON.stringify(finalOf(result))];
  }
}

/** A turn's final object (the SSE stream's last event), as remembered for an idempotent retry. */
function finalOf(r: TurnResult): Record<string, unknown> {
  const { error } = r;
  const rest = { response: r.response, conversation_id: r.conversation_id, timestamp: r.timestamp, tokens_used: r.tokens_used, incomplete: r.incomplete };
  return error ? { ...rest, done: true, error: { code: error.code, message: error.message, details: error.details } } : { ...rest, done: true };
}

/** Answers a retried POST /chat from the first attempt's result, as JSON or as a (short) stream. */
function replayChat(status: number, body: string, stream: boolean): unknown {
  const final = JSON.parse(body) as {
    response: string; conversation_id: string; timestamp: string; tokens_used: number; incomplete?: boolean; error?: { code: string; message: string; details: unknown };
  };
  if (stream) {
    return {
      kind: 'sse' as const,
      start(sink: SseSink) {
        if (final.response) sink.send(sseChunk(final.response));
        sink.send(body);
        sink.end();
      },
    };
  }
  const headers = { 'Idempotent-Replayed': 'true' };
  if (final.error) return json(status, { error: final.error }, headers);
  // A first attempt cut short (the client went away) is replayed as what it was: incomplete.
  return json(200, {
    response: final.response, conversation_id: final.conversation_id, timestamp: final.timestamp, tokens_used: final.tokens_used,
    ...(final.incomplete ? { incomplete: true } : {}),
  }, headers);
}

/** The Agent API: health, info, chat (JSON and SSE), history, clear. */
export function agentRoutes(deps: AgentRouteDeps): RouteDef[] {
  const { actors, conversations } = deps;
  const message = chatMessageSchema(deps.maxMessageChars);

  async function agentFor(req: Request<unknown, unknown>): Promise<string> {
    const nft = req.agentNft;
    // No await when it answers at once (one process): no microtask hop on every chat request.
    const up = nft === undefined ? false : deps.available(nft);
    if (nft === undefined || (up !== true && !(await up))) throw new ApiError('NOT_FOUND', `No agent is running for NFT ${nft}`);
    if (req.auth) await deps.authorize(req.auth, nft);
    return nft;
  }

  return [
    route({
      method: 'GET', path: '/health', rateClass: 'other', auth: 'none', tags: ['agent'], summary: 'Agent health check',
      response: v.object({ status: v.string(), version: v.string(), uptime: v.number() }),
      async handler(req) {
        await agentFor(req);
        return { status: 'healthy', version: VERSION, uptime: Math.round((deps.now() - deps.startedAt) / 1000) };
      },
    }),
    route({
      method: 'GET', path: '/info', rateClass: 'other', auth: 'none', tags: ['agent'], summary: 'Agent information',
      response: v.object({ name: v.string(), nft_token_id: v.string(), capabilities: v.array(v.string()), model: v.string(), status: v.string() }),
      async handler(req) {
        const nft = await agentFor(req);
        const c = await actors.ask<AgentSettings>(AGENT_ACTOR, nft, { type: 'info' } satisfies AgentMsg);
        return { name: c.name, nft_token_id: nft, capabilities: c.capabilities, model: c.model, status: 'running' };
      },
    }),
    route({
      method: 'POST', path: '/chat', rateClass: 'chat', auth: 'required', tags: ['agent'], sse: true, idempotent: true,
      summary: 'Send a message to the agent (stream: true answers text/event-stream)',
      body: v.object({ message, conversation_id: v.optional(conversationId), stream: v.optional(v.boolean('must be true or false')) }),
      response: turnResponse,
      async handler(req) {
        const nft = await agentFor(req);
        const wallet = req.auth!.sub;
        // An Idempotency-Key makes a retry answer the first attempt's result instead of running again.
        const store = deps.idempotency;
        const key = store ? IdempotencyStore.parseKey(req.header('idempotency-key'), 'Idempotency-Key') : undefined;
        const scope = `POST /chat ${nft}`;
        if (store && key) {
          // The same turn whether streamed or not: a retry may ask for the other format.
          const b = await store.begin(wallet, scope, key, IdempotencyStore.fingerprint({ message: req.body.message, conversation_id: req.body.conversation_id ?? null }));
          if (b.kind === 'replay') return replayChat(b.status, b.body, req.body.stream === true);
          if (b.kind !== 'new') throw notFinished(b, key);
        }
        const bridge = req.body.stream ? new SseBridge() : undefined;
        let handle: TurnHandle;
        try {
          handle = await actors.ask<TurnHandle>(AGENT_ACTOR, nft, {
            type: 'turn', wallet, conversationId: req.body.conversation_id, message: req.body.message, listener: bridge,
            // A stream's turn runs on the bridge's controller (the client leaving, the deadline).
            ...(bridge ? { controller: bridge.abort } : { signal: req.signal }),
          } satisfies AgentMsg);
        } catch (e) {
          if (store && key) await store.release(wallet, scope, key).catch((err) => req.log.error({ err }, 'releasing an idempotency key failed'));
          throw e;
        }
        if (store && key) {
          // The turn runs anyway if this fails; only the in-progress pointer is missing.
          store.setRef(wallet, scope, key, handle.conversation_id).catch((err) => req.log.error({ err }, 'remembering an idempotent chat turn failed'));
          void handle.done.then(async (r) => {
            // A turn that left nothing (cancelled before the model started) is not a first result;
            // one cut by a shutdown stays pending: after the restart a retry is told "interrupted",
            // as after a crash, rather than replayed a 503.
            if (!r.stored) await store.release(wallet, scope, key);
            else if (r.error?.details.reason !== 'shutdown') await store.complete(wallet, scope, key, r.error ? r.error.status : 200, JSON.stringify(finalOf(r)), r.conversation_id);
          }).catch((err) => req.log.error({ err }, 'remembering an idempotent chat result failed'));
        }
        if (bridge) {
          return {
            kind: 'sse' as const,
            start(sink: SseSink) {
              bridge.attach(sink);
              // done never rejects (a failed turn resolves with its error); the catch is a backstop.
              void handle.done.then((r) => bridge.finish(r)).catch((e) => bridge.fail(e));
            },
          };
        }
        const result = await handle.done;
        if (result.error) throw result.error;
        return { response: result.response, conversation_id: result.conversation_id, timestamp: result.timestamp, tokens_used: result.tokens_used };
      },
    }),
    ...(deps.usage ? [route({
      method: 'GET', path: '/usage', rateClass: 'other', auth: 'required', tags: ['agent'],
      summary: "Today's model token usage of this NFT's agent and its daily quota (null when there is none)",
      response: v.object({
        nft_token_id: v.string(), day: v.string(), tokens_used: v.number(), tokens_reserved: v.number(),
        daily_quota: v.nullable(v.number()), remaining: v.nullable(v.number()), resets_at: v.string(),
      }),
      async handler(req) {
        const nft = await agentFor(req);
        return deps.usage!(nft);
      },
    })] : []),
    route({
      method: 'GET', path: '/chat/history', rateClass: 'chat', auth: 'required', tags: ['agent'], summary: 'Conversation history, oldest first',
      query: v.object({ conversation_id: conversationId, limit: intParam(1, 100, 50), offset: intParam(0, 1_000_000_000, 0) }),
      response: v.object({
        messages: v.array(v.object({ role: v.string(), content: v.string(), timestamp: v.string(), tokens: v.number(), incomplete: v.boolean() })),
        total: v.number(), conversation_id: v.string(),
        pagination: v.object({ total: v.number(), limit: v.number(), offset: v.number(), has_more: v.boolean() }),
      }),
      async handler(req) {
        const nft = await agentFor(req);
        const { conversation_id: id, limit, offset } = req.query;
        await conversations.owned(id, nft, req.auth!.sub);
        const page = await conversations.page(id, limit, offset);
        return {
          messages: page.messages.map((m) => ({
            role: m.role, content: m.content, timestamp: new Date(m.created_at).toISOString(), tokens: m.tokens, incomplete: m.incomplete === 1,
          })),
          total: page.total,
          conversation_id: id,
          pagination: { total: page.total, limit, offset, has_more: offset + page.messages.length < page.total },
        };
      },
    }),
    route({
      method: 'POST', path: '/chat/clear', rateClass: 'chat', auth: 'required', signed: true, tags: ['agent'], summary: 'Clear a conversation',
      body: v.object({ conversation_id: conversationId }),
      response: v.object({ message: v.string(), conversation_id: v.string(), deleted: v.number() }),
      async handler(req) {
        const nft = await agentFor(req);
        const cleared = await actors.ask<ClearHandle>(AGENT_ACTOR, nft, { type: 'clear', wallet: req.auth!.sub, conversationId: req.body.conversation_id } satisfies AgentMsg);
        const deleted = await cleared.done;
        return json(200, { message: 'Conversation cleared', conversation_id: req.body.conversation_id, deleted });
      },
    }),
  ];
}
