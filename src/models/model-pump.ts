import type { ModelBackend, ModelEvent, ModelRequest } from './model-backend.js';

export type UsageEvent = Extract<ModelEvent, { type: 'usage' }>;

/**
 * What a turn does with each delta: returning a promise pauses the model until it settles (a
 * backed-up HTTP stream).
 */
export type DeltaSink = (content: string) => void | Promise<void>;

/**
 * Runs a model reply into `onDelta` and resolves with its usage event, or undefined when the
 * signal aborted it. A backend with a push form (`pump`, ours: the scripted model) calls back
 * straight from its timer: no async-iterator step, no promise and no race per token, and it
 * resolves at once on abort (its contract). Any other backend is iterated, and its wait ends
 * when the signal aborts, whichever comes first: a backend that does not honour the abort (a
 * stuck connection) cannot hold a turn, its conversation and a concurrency slot past a deadline
 * or a shutdown. Deltas after the abort are dropped.
 */
export function pumpModel(backend: ModelBackend, request: ModelRequest, onDelta: DeltaSink): Promise<UsageEvent | undefined> {
  const { signal } = request;
  if (signal.aborted) return Promise.resolve(undefined);
  // A flag the abort sets, read per delta: signal.aborted is a brand-checked getter (2% of the
  // chat path's CPU when read for every token); the event fires synchronously inside abort().
  let aborted = false;
  const onAborted = () => {
    aborted = true;
  };
  signal.addEventListener('abort', onAborted, { once: true });
  const sink: DeltaSink = (content) => (aborted || !content ? undefined : onDelta(content));
  const done = () => signal.removeEventListener('abort', onAborted);
  if (backend.pump) {
    return backend.pump(request, sink).then(
      (u) => {
        done();
        return aborted ? undefined : u;
      },
      (e) => {
        done();
        if (aborted) return undefined;
        throw e;
      },
    );
  }
  const run = iterate(backend.stream(request), sink, signal);
  // One abort race per reply (not per token).
  return new Promise<UsageEvent | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    run.then(
      (u) => {
        signal.removeEventListener('abort', onAbort);
        done();
        resolve(aborted ? undefined : u);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        done();
        if (aborted) resolve(undefined);
        else reject(e);
      },
    );
  });
}

async function iterate(source: AsyncIterable<ModelEvent>, onDelta: DeltaSink, signal: AbortSignal): Promise<UsageEvent | undefined> {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  // Released at once on abort (not after the backend's next chunk, which may never come).
  const release = () => void Promise.resolve(it.return?.()).catch(() => undefined);
  signal.addEventListener('abort', release, { once: true });
  let usage: UsageEvent | undefined;
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) {
        finished = true;
        return usage;
      }
      if (signal.aborted) return undefined;
      const ev = r.value;
      if (ev.type === 'usage') usage = ev;
      else {
        const wait = onDelta(ev.content);
        if (wait) await wait;
      }
    }
  } finally {
    signal.removeEventListener('abort', release);
    // A throw in onDelta or a backend error: release its connection too.
    if (!finished && !signal.aborted) release();
  }
}
