import type { ChatMessage, ModelBackend, ModelEvent, ModelPumpRequest, ModelRequest } from '../../src/models/model-backend.js';
import type { TurnAbort } from '../../src/models/turn-abort.js';
import { estimatedUsage } from './estimated-usage.js';
import type { UsageEvent } from '../../src/models/model-pump.js';
import { tokenClock } from './token-clock.js';

export interface ScriptedBackendOptions {
  /** pause before each token after the first; 0 = no timers at all (tests, benchmarks) */
  delayMs: number;
}

/** How much of the user's message the reply quotes back. */
const QUOTE_LIMIT = 280;

/**
 * The built-in offline model: a deterministic reply made from the conversation (it reflects
 * the last user message and counts the turns), streamed a word at a time. Same messages, same
 * tokens. Used by default, in tests, demos and the benchmark; it says plainly it is no LLM.
 */
export class ScriptedBackend implements ModelBackend {
  readonly name = 'scripted' as const;
  readonly defaultModel = 'scripted';

  constructor(private readonly opts: ScriptedBackendOptions) {}

  /**
   * The push form the chat path uses: each token is handed over from the shared clock's timer
   * callback directly (no promise, no iterator step per token, no AbortSignal); the same tokens
   * at the same times as stream().
   */
  pump(request: ModelPumpRequest, onDelta: (content: string) => void | Promise<void>, abort: TurnAbort): Promise<UsageEvent | undefined> {
    // Tokens are cut from the reply as they fall due (a position, not an array of them per reply).
    const all = scriptedReply(request.messages);
    const max = request.maxTokens ?? Infinity;
    const delay = this.opts.delayMs;
    const start = performance.now();
    return new Promise((resolve, reject) => {
      let i = 0;
      let pos = 0;
      let cancelWake: (() => void) | undefined;
      let settled = false;
      let off: (() => void) | undefined;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        off?.();
        if (err !== undefined) reject(err);
        else if (abort.aborted) resolve(undefined);
        else {
          // A word is a token here: maxTokens keeps that many.
          const truncated = pos < all.length;
          const usage = estimatedUsage(request.messages, truncated ? all.slice(0, pos) : all);
          resolve(truncated ? { ...usage, truncated } : usage);
        }
      };
      const step = (): void => {
        cancelWake = undefined;
        try {
          while (pos < all.length && i < max) {
            if (abort.aborted) return finish();
            // Token i is due at start + i * delay (a metronome, as in stream()).
            if (i > 0 && delay > 0) {
              const at = start + i * delay;
              if (at > performance.now()) {
                cancelWake = tokenClock.wakeAt(at, step);
                return;
              }
            }
            TOKEN.lastIndex = pos;
            const token = TOKEN.exec(all)![0];
            pos = TOKEN.lastIndex;
            i++;
            const wait = onDelta(token);
            if (wait) {
              wait.then(step, finish);
              return;
            }
          }
          finish();
        } catch (e) {
          finish(e);
        }
      };
      if (abort.aborted) return resolve(undefined);
      // Also without a delay: a reply paused on a backed-up stream ends at once on abort.
      off = abort.onAbort(() => {
        cancelWake?.();
        finish();
      });
      step();
    });
  }

  private plan(request: ModelRequest): { tokens: string[]; reply: string; truncated: boolean } {
    const all = scriptedReply(request.messages);
    // A word is a token here: maxTokens keeps that many.
    const tokens = splitTokens(all);
    const truncated = request.maxTokens !== undefined && tokens.length > request.maxTokens;
    if (truncated) tokens.length = request.maxTokens!;
    return { tokens, reply: truncated ? tokens.join('') : all, truncated };
  }

  async *stream(request: ModelRequest): AsyncGenerator<ModelEvent, void, undefined> {
    const { signal } = request;
    const { tokens, reply, truncated } = this.plan(request);
    const delay = this.opts.delayMs;
    // Token i is due at start + i * delay (a metronome): time spent delivering a token does not
    // push the later ones back, so a loaded server does not drift further behind with each token.
    const start = performance.now();
    // One abort listener per reply, not one per token (EventTarget listeners are costly).
    let wake: (() => void) | undefined;
    const onAbort = () => wake?.();
    if (delay > 0) signal.addEventListener('abort', onAbort, { once: true });
    try {
      let i = 0;
      for (const token of tokens) {
        if (i > 0 && delay > 0) {
          const wait = start + i * delay - performance.now();
          if (wait > 0 && !signal.aborted) {
            await new Promise<void>((resolve) => {
              // Streams share one timer per due millisecond (see token-clock.ts).
              const cancel = tokenClock.wakeAt(start + i * delay, resolve);
              wake = () => {
                cancel();
                resolve();
              };
            });
            wake = undefined;
          }
        }
        i++;
        if (signal.aborted) return;
        yield { type: 'delta', content: token };
      }
    } finally {
      if (delay > 0) signal.removeEventListener('abort', onAbort);
    }
    if (signal.aborted) return;
    const usage = estimatedUsage(request.messages, reply);
    yield truncated ? { ...usage, truncated } : usage;
  }
}

/** The reply for a conversation: a pure function of the messages. */
export function scriptedReply(messages: readonly ChatMessage[]): string {
  const turns = messages.filter((m) => m.role === 'user').length;
  let last: string | undefined;
  for (let i = messages.length - 1; i >= 0 && last === undefined; i--) {
    if (messages[i].role === 'user') last = messages[i].content;
  }
  const disclaimer = 'I am the offline scripted model of Secret Panthers, not a real LLM, so I only reflect what you write.';
  if (last === undefined || last.trim() === '') {
    return `Hello! ${disclaimer} Send me a message and I will echo it back.`;
  }
  const text = last.trim().replace(/\s+/g, ' ');
  const quote = text.length > QUOTE_LIMIT ? `${text.slice(0, QUOTE_LIMIT)}...` : text;
  const verb = text.endsWith('?') ? 'asked' : 'said';
  const turn = turns === 1 ? 'This is the first turn of our conversation.' : `This is turn ${turns} of our conversation.`;
  const words = text.split(' ').length;
  return `You ${verb}: "${quote}" (${words} ${words === 1 ? 'word' : 'words'}). ${turn} ${disclaimer}`;
}

/** Word-sized tokens, each with the spaces that follow it: joined, they give back the text. */
export function splitTokens(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/** One token of splitTokens' kind at lastIndex (sticky): matches wherever text remains. */
const TOKEN = /\S+\s*|\s+/y;
