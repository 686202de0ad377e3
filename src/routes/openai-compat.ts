import { createHash } from 'node:crypto';
import * as v from 'valibot';
import { ApiError } from '../errors.js';
import { json, route, type RouteDef, type SseSink } from '../server/route.js';
import { jsonObject } from '../server/validation.js';
import { AGENT_ACTOR, type AgentMsg, type TurnHandle, type TurnResult } from '../contracts/agent-messages.js';
import type { ChatMessage } from '../models/model-backend.js';
import { ChunkWriter, completion, completionId, DONE, openaiError, type Usage } from '../agents/openai-wire.js';
import { SseBridge, type AgentRouteDeps } from './agent.js';

/** Most messages one request may carry (the stored history is the context; this bounds a seed). */
const MAX_MESSAGES = 64;
/** The earlier messages of a request, all together, may be this many times one message's limit. */
const PRELUDE_FACTOR = 4;
const CONVERSATION_HEADER = 'x-conversation-id';

/** The id the agent has as a model in its OpenAI endpoint. */
export function agentModelId(nft: string): string {
  return `agent-${nft}`;
}

/** Streams a turn as OpenAI `chat.completion.chunk` frames. */
class OpenAiSseBridge extends SseBridge {
  constructor(private readonly writer: ChunkWriter) {
    super();
  }

  override attach(sink: SseSink): void {
    sink.send(this.writer.role());
    super.attach(sink);
  }

  protected override frame(content: string): string {
    return this.writer.content(content);
  }

  protected override finalFrames(result: TurnResult): string[] {
    if (result.error) return [JSON.stringify(openaiError(result.error)), DONE];
    const frames = [this.writer.finish(result.truncated ? 'length' : 'stop')];
    const usage = this.writer.usage(usageOf(result));
    if (usage) frames.push(usage);
    frames.push(DONE);
    return frames;
  }
}

function usageOf(r: TurnResult): Usage {
  const prompt = r.prompt_tokens ?? 0;
  const completionTokens = r.completion_tokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens };
}

/** OpenAI content: a string, or text parts (other part types are refused). */
function textOf(content: string | { type: string; text?: string }[] | null | undefined, i: number): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content
    .map((p, j) => {
      if (p.type !== 'text' || typeof p.text !== 'string') {
        throw new ApiError('INVALID_FIELD', 'Only text content parts are supported', { field: `messages.${i}.content.${j}`, reason: 'unsupported content part' });
      }
      return p.text;
    })
    .join('');
}

/**
 * Every agent as an OpenAI-compatible endpoint: POST /openai/v1/chat/completions and
 * GET /openai/v1/models (under /v1/agents/{nft}/ or the agent's Host, and at the root of a
 * standalone agent). The agent's character always comes first; the caller's messages become a
 * conversation of the token's holder (X-Conversation-Id names an existing one, else `user`
 * names one that is opened on first use, else a new one per request), stored like any turn, so
 * history, clear, quotas, rate limits, audit and WS followers all apply. The caller's key is
 * only ever our bearer token: it never reaches the model backend.
 */
export function openaiRoutes(deps: AgentRouteDeps): RouteDef[] {
  const { actors } = deps;
  const limit = deps.maxMessageChars;
  const text = v.union(
    [
      v.pipe(v.string(), v.maxLength(limit, `must be at most ${limit} characters`)),
      v.pipe(v.array(v.object({ type: v.string('must be a string'), text: v.optional(v.pipe(v.string(), v.maxLength(limit, `must be at most ${limit} characters`))) })), v.maxLength(64, 'at most 64 parts')),
      v.null(),
    ],
    `must be a string of at most ${limit} characters or an array of text parts`,
  );
  const body = v.object({
    model: v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(256, 'must be at most 256 characters')),
    messages: v.pipe(
      v.array(
        jsonObject({
          role: v.picklist(['system', 'developer', 'user', 'assistant'], 'must be system, developer, user or assistant'),
          content: v.optional(text),
          name: v.optional(v.string('must be a string')),
        }, 'must be a message object'),
        'must be an array of messages',
      ),
      v.minLength(1, 'must have at least one message'),
      v.maxLength(MAX_MESSAGES, `must have at most ${MAX_MESSAGES} messages`),
    ),
    stream: v.optional(v.nullable(v.boolean('must be true or false'))),
    stream_options: v.optional(v.nullable(jsonObject({ include_usage: v.optional(v.boolean('must be true or false')) }, 'must be an object'))),
    max_tokens: v.optional(v.nullable(v.pipe(v.number('must be a number'), v.integer('must be a whole number'), v.minValue(1, 'must be at least 1')))),
    max_completion_tokens: v.optional(v.nullable(v.pipe(v.number('must be a number'), v.integer('must be a whole number'), v.minValue(1, 'must be at least 1')))),
    n: v.optional(v.nullable(v.pipe(v.number('must be a number'), v.value(1, 'only n = 1 is supported')))),
    user: v.optional(v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(128, 'must be at most 128 characters'))),
  });

  async function agentFor(req: { agentNft: string | undefined; auth: AuthLike }): Promise<string> {
    const nft = req.agentNft;
    const up = nft === undefined ? false : deps.available(nft);
    if (nft === undefined || (up !== true && !(await up))) throw new ApiError('NOT_FOUND', `No agent is running for NFT ${nft}`);
    await deps.authorize(req.auth!, nft);
    return nft;
  }

  const modelObject = (nft: string) => ({ id: agentModelId(nft), object: 'model', created: Math.floor(deps.startedAt / 1000), owned_by: 'secret-panthers' });

  return [
    route({
      method: 'GET', path: '/openai/v1/models', rateClass: 'other', auth: 'required', tags: ['openai'],
      summary: 'OpenAI-compatible: the agent, listed as the one model',
      response: v.object({ object: v.string(), data: v.array(v.object({ id: v.string(), object: v.string(), created: v.number(), owned_by: v.string() })) }),
      async handler(req) {
        const nft = await agentFor(req);
        return { object: 'list', data: [modelObject(nft)] };
      },
    }),
    route({
      method: 'GET', path: '/openai/v1/models/:model', rateClass: 'other', auth: 'required', tags: ['openai'],
      summary: 'OpenAI-compatible: the agent as a model',
      response: v.object({ id: v.string(), object: v.string(), created: v.number(), owned_by: v.string() }),
      async handler(req) {
        const nft = await agentFor(req);
        if (req.params.model !== agentModelId(nft)) throw new ApiError('NOT_FOUND', `The model ${req.params.model} does not exist here; this agent is ${agentModelId(nft)}`);
        return modelObject(nft);
      },
    }),
    route({
      method: 'POST', path: '/openai/v1/chat/completions', rateClass: 'chat', auth: 'required', tags: ['openai'], sse: true,
      summary: "OpenAI-compatible chat completion with the agent (its character first; stored as a conversation of the token's holder)",
      body,
      response: v.object({ id: v.string(), object: v.string(), created: v.number(), model: v.string(), choices: v.array(v.unknown()), usage: v.unknown() }),
      async handler(req) {
        const nft = await agentFor(req);
        const wallet = req.auth!.sub;
        const msgs = req.body.messages;
        const last = msgs[msgs.length - 1]!;
        if (last.role !== 'user') throw new ApiError('INVALID_FIELD', 'The last message must be from the user', { field: `messages.${msgs.length - 1}.role`, reason: 'must be user' });
        const message = textOf(last.content, msgs.length - 1).trim();
        if (!message) throw new ApiError('INVALID_FIELD', 'The last message is empty', { field: `messages.${msgs.length - 1}.content`, reason: 'must not be empty' });
        // Earlier messages seed a new conversation; the caller's system prompts follow the
        // character (stored as system messages), they never replace it.
        const prelude: ChatMessage[] = msgs.slice(0, -1).flatMap((m, i) => {
          const content = textOf(m.content, i);
          if (!content) return [];
          return [{ role: m.role === 'developer' ? 'system' : m.role, content }];
        });
        // Stored whole: bounded like a few messages, not 64 times one (OWASP API4).
        const seeded = prelude.reduce((n, m) => n + m.content.length, 0);
        if (seeded > PRELUDE_FACTOR * limit) {
          throw new ApiError('INVALID_FIELD', `The earlier messages carry ${seeded} characters; at most ${PRELUDE_FACTOR * limit} are accepted`, { field: 'messages', reason: 'too long' });
        }

        let conversationId = req.header(CONVERSATION_HEADER);
        let createIfMissing = false;
        if (conversationId !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(conversationId)) {
          throw new ApiError('INVALID_FIELD', 'X-Conversation-Id must be a conversation id', { field: 'X-Conversation-Id', reason: 'must be a conversation id' });
        }
        if (conversationId === undefined && req.body.user !== undefined) {
          // Stable per (NFT, wallet, user): a new owner of the NFT gets other conversations.
          conversationId = 'oai-' + createHash('sha256').update(`${nft}\n${wallet.toLowerCase()}\n${req.body.user}`).digest('hex').slice(0, 40);
          createIfMissing = true;
        }
        const requested = req.body.max_completion_tokens ?? req.body.max_tokens ?? undefined;
        const model = agentModelId(nft);
        const id = completionId();
        const created = Math.floor(deps.now() / 1000);
        const bridge = req.body.stream ? new OpenAiSseBridge(new ChunkWriter(id, created, model, req.body.stream_options?.include_usage === true)) : undefined;
        const handle = await actors.ask<TurnHandle>(AGENT_ACTOR, nft, {
          type: 'turn', wallet, conversationId, createIfMissing, message, prelude, maxTokens: requested,
          listener: bridge, ...(bridge ? { controller: bridge.abort } : { signal: req.signal }),
        } satisfies AgentMsg);
        const headers = { 'X-Conversation-Id': handle.conversation_id };
        if (bridge) {
          return {
            kind: 'sse' as const,
            headers,
            start(sink: SseSink) {
              bridge.attach(sink);
              void handle.done.then((r) => bridge.finish(r));
            },
          };
        }
        const result = await handle.done;
        if (result.error) throw result.error;
        return json(200, completion(id, created, model, result.response, result.truncated ? 'length' : 'stop', usageOf(result)), headers);
      },
    }),
  ];
}

type AuthLike = Parameters<AgentRouteDeps['authorize']>[0] | undefined;
