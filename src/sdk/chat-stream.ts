import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { PanthersError } from './errors.js';
import type { ChatChunk, ChatFinal } from './types.js';

/**
 * A streamed chat answer: iterate it for the chunks as they arrive, then read `final` for the
 * whole response as stored. A turn that fails midway throws a PanthersError from the loop (and
 * `final` rejects with it) after the chunks that did arrive.
 *
 *   const stream = client.agent('42').chatStream('hello');
 *   for await (const { content } of stream) process.stdout.write(content);
 *   const { conversation_id, tokens_used } = await stream.final;
 */
export class ChatStream implements AsyncIterable<ChatChunk> {
  private started = false;
  private resolveFinal!: (f: ChatFinal) => void;
  private rejectFinal!: (e: unknown) => void;
  private readonly finalPromise: Promise<ChatFinal>;

  constructor(private readonly source: AsyncGenerator<ChatChunk, ChatFinal>) {
    this.finalPromise = new Promise<ChatFinal>((resolve, reject) => {
      this.resolveFinal = resolve;
      this.rejectFinal = reject;
    });
    // Whoever iterates sees the error; `final` must not also be reported as unhandled.
    this.finalPromise.catch(() => {});
  }

  /** The whole answer. Reading it without iterating consumes the stream. */
  get final(): Promise<ChatFinal> {
    if (!this.started) void this.drain();
    return this.finalPromise;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ChatChunk> {
    if (this.started) throw new TypeError('a ChatStream can be iterated once');
    this.started = true;
    let settled = false;
    try {
      for (;;) {
        const r = await this.source.next();
        if (r.done) {
          settled = true;
          this.resolveFinal(r.value);
          return;
        }
        yield r.value;
      }
    } catch (e) {
      settled = true;
      this.rejectFinal(e);
      throw e;
    } finally {
      if (!settled) {
        // The reader stopped early: end the underlying request or socket.
        await this.source.return(undefined as never).catch(() => {});
        this.rejectFinal(new PanthersError('NETWORK_ERROR', 'The stream was closed before its last chunk'));
      }
    }
  }

  private async drain(): Promise<void> {
    try {
      for await (const _ of this) {
        // chunks are not wanted: only the final answer
      }
    } catch {
      // already delivered through `final`
    }
  }
}

/** The error object of a stream's last frame (SSE final event or WS error frame) as a PanthersError. */
export type ErrorObject = { code?: unknown; message?: unknown; details?: unknown } | undefined;

export function streamError(e: ErrorObject): PanthersError {
  const code = typeof e?.code === 'string' ? (e.code as ErrorCode) : 'INTERNAL_ERROR';
  const status = (ERROR_CODES as Record<string, { status: number }>)[code]?.status ?? 0;
  const details = e?.details && typeof e.details === 'object' ? (e.details as Record<string, unknown>) : {};
  return new PanthersError(code, typeof e?.message === 'string' ? e.message : code, { status, details });
}
