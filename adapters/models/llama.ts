import { existsSync } from 'node:fs';
import { ApiError } from '../../src/errors.js';
import type { ChatMessage, ModelBackend, ModelEvent, ModelRequest } from '../../src/models/model-backend.js';
import { stalled, unavailable } from './backend-errors.js';
import { FairSlots } from './fair-slots.js';
import { importLlama, LLAMA_SETUP_COMMAND } from './llama-package.js';

export interface LlamaBackendOptions {
  /** the GGUF file (PANTHERS_LLAMA_MODEL) */
  modelPath: string | undefined;
  /** tokens of context per sequence */
  contextSize: number;
  /** CPU threads for evaluation (0: all) */
  threads: number;
  /** layers offloaded to a GPU (0: CPU only) */
  gpuLayers: number;
  /** sequences evaluated at once: turns beyond this wait, round-robin by NFT */
  sequences: number;
  temperature: number;
  /** no next token within this long: TIMEOUT (as the other backends' idle timeout) */
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

interface Loaded {
  llama: any;
  model: any;
  context: any;
  LlamaChat: any;
  /** sequences made and now idle: reused (node-llama-cpp reclaims a disposed one only later, asynchronously) */
  idle: any[];
}

/**
 * A GGUF model run in this process by llama.cpp (node-llama-cpp). Loaded on first use, once, and
 * shared by every agent: one context with `sequences` sequences, handed out by FairSlots so a
 * busy NFT cannot starve the others. The prompt is formatted by the model's own chat template
 * (node-llama-cpp resolves it from the GGUF metadata, else a generic one).
 */
export class LlamaBackend implements ModelBackend {
  readonly name = 'llama' as const;
  readonly defaultModel: string;
  private loading: Promise<Loaded> | undefined;
  private readonly slots: FairSlots;

  constructor(private readonly opts: LlamaBackendOptions) {
    this.defaultModel = 'llama';
    this.slots = new FairSlots(Math.max(1, opts.sequences));
  }

  private load(): Promise<Loaded> {
    this.loading ??= (async () => {
      const path = this.opts.modelPath;
      if (!path) throw new ApiError('SERVICE_UNAVAILABLE', 'The llama model backend has no model: set PANTHERS_LLAMA_MODEL to a GGUF file', { backend: 'llama' });
      if (!existsSync(path)) throw new ApiError('SERVICE_UNAVAILABLE', `The llama model file ${path} does not exist`, { backend: 'llama' });
      let mod: any;
      try {
        mod = await importLlama(this.opts.env);
      } catch (e) {
        throw new ApiError('SERVICE_UNAVAILABLE', (e as Error).message, { backend: 'llama', setup: LLAMA_SETUP_COMMAND });
      }
      const gpu = this.opts.gpuLayers > 0 ? 'auto' : false;
      const llama = await mod.getLlama({ gpu, build: 'never', progressLogs: false, logLevel: 'error' });
      const model = await llama.loadModel({ modelPath: path, gpuLayers: this.opts.gpuLayers });
      const context = await model.createContext({
        contextSize: this.opts.contextSize, sequences: this.slots.size, ...(this.opts.threads > 0 ? { threads: this.opts.threads } : {}),
      });
      return { llama, model, context, LlamaChat: mod.LlamaChat, idle: [] };
    })();
    // A failed load is retried by the next turn (the file or the package may appear).
    this.loading.catch(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  async *stream(request: ModelRequest): AsyncGenerator<ModelEvent, void, undefined> {
    const { signal } = request;
    if (signal.aborted) return;
    let loaded: Loaded;
    try {
      loaded = await this.load();
    } catch (e) {
      if (e instanceof ApiError) throw e;
      throw unavailable('llama', `the model could not be loaded (${(e as Error).message})`);
    }
    if (signal.aborted) return;

    // Wait for a sequence, at most the idle timeout.
    const wait = AbortSignal.any([signal, AbortSignal.timeout(this.opts.timeoutMs)]);
    let release: () => void;
    try {
      release = await this.slots.acquire(request.tenant ?? '', wait);
    } catch {
      if (signal.aborted) return;
      throw stalled('llama', this.opts.timeoutMs);
    }

    const ac = new AbortController();
    const onAbort = () => ac.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let failure: unknown;
    let stopReason = '';
    let chat: any;
    let sequence: any;
    let meterBefore = { usedInputTokens: 0, usedOutputTokens: 0 };
    let settled: Promise<unknown> = Promise.resolve();
    try {
      // The slot guarantees a sequence: an idle one, or one of those not made yet.
      sequence = loaded.idle.pop() ?? loaded.context.getSequence();
      meterBefore = sequence.tokenMeter.getState();
      chat = new loaded.LlamaChat({ contextSequence: sequence, autoDisposeSequence: false });
      const run = chat.generateResponse(toHistory(request.messages), {
        onTextChunk: (text: string) => {
          if (!text) return;
          queue.push(text);
          wake?.();
        },
        signal: ac.signal,
        stopOnAbortSignal: true,
        maxTokens: request.maxTokens,
        temperature: this.opts.temperature,
      });
      settled = run.then(
        (r: any) => {
          stopReason = r?.metadata?.stopReason ?? '';
          finished = true;
          wake?.();
        },
        (e: unknown) => {
          failure = e;
          finished = true;
          wake?.();
        },
      );

      while (true) {
        while (queue.length > 0) {
          if (signal.aborted) return;
          yield { type: 'delta', content: queue.shift()! };
        }
        if (signal.aborted) return;
        if (finished) break;
        // Idle timeout: no next chunk in time.
        const got = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), this.opts.timeoutMs);
          wake = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
        wake = undefined;
        if (!got && queue.length === 0 && !finished) {
          ac.abort();
          throw stalled('llama', this.opts.timeoutMs);
        }
      }
      if (signal.aborted) return;
      if (failure) throw unavailable('llama', (failure as Error).message ?? 'generation failed');
      // Counted by llama.cpp: the tokens generated this turn, and the whole prompt (what the
      // sequence holds less what it generated; a prefix it kept from its previous turn is not
      // evaluated again, but it is still this turn's prompt).
      const completionTokens = sequence.tokenMeter.usedOutputTokens - meterBefore.usedOutputTokens;
      yield {
        type: 'usage',
        promptTokens: Math.max(0, sequence.contextTokens.length - completionTokens),
        completionTokens,
        ...(stopReason === 'maxTokens' ? { truncated: true } : {}),
      };
    } finally {
      signal.removeEventListener('abort', onAbort);
      // A consumer that stopped early (break) stops the generation too.
      if (!finished) {
        ac.abort();
        // The sequence is reused only once its generation has really stopped.
        await settled;
      }
      try {
        chat?.dispose({ disposeSequence: false });
      } catch {
        // already disposed
      }
      if (sequence) loaded.idle.push(sequence);
      release();
    }
  }

  /** Frees the model (shutdown). */
  async close(): Promise<void> {
    const l = this.loading;
    this.loading = undefined;
    if (!l) return;
    try {
      const { llama, model, context } = await l;
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    } catch {
      // never loaded
    }
  }
}

function toHistory(messages: readonly ChatMessage[]): unknown[] {
  const history: unknown[] = messages.map((m) =>
    m.role === 'system' ? { type: 'system', text: m.content } : m.role === 'user' ? { type: 'user', text: m.content } : { type: 'model', response: [m.content] },
  );
  // An empty model response at the end: generate it.
  history.push({ type: 'model', response: [] });
  return history;
}
