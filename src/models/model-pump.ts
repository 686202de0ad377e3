import type { ModelBackend, ModelEvent, ModelPumpRequest } from './model-backend.js';
import type { TurnAbort } from './turn-abort.js';

export type UsageEvent = Extract<ModelEvent, { type: 'usage' }>;

/**
 * What a turn does with each delta: returning a promise pauses the model until it settles (a
 * backed-up HTTP stream).
 */
export type DeltaSink = (content: string) => void | Promise<void>;

/**
 * Runs a model reply into `onDelta` and resolves with its usage event, or undefined when `abort`
 * aborted it. A backend with a push form (`pump`, ours: the scripted model) calls back straight
 * from its timer: no async-iterator step, no promise and no race per token, no AbortSignal, and
 * it resolves at once on abort (its contract). Any other backend is iterated with a real
 * AbortSignal (fetch takes one), and its wait ends on abort, whichever comes first: a backend
 * that does not honour the abort (a stuck connection) cannot hold a turn, its conversation and a
 * concurrency slot past a deadline or a shutdown. Deltas after the abort are dropped.
 */
export function pumpModel(backend: ModelBackend, request: ModelPumpRequest, abort: TurnAbort, onDelta: DeltaSink): Promise<UsageEvent | undefined> {
  if (abort.aborted) return Promise.resolve(undefined);
  const sink: DeltaSink = (content) => (abort.aborted || !content ? undefined : onDelta(content));
  if (backend.pump) {
    return backend.pump(request, sink, abort).then(
      (u) => (abort.aborted ? undefined : u),
      (e) => {
        if (abort.aborted) return undefined;
        throw e;
      },
    );
  }
  const signal = abort.signal;
  const run = iterate(backend.stream({ ...request, signal }), sink, abort);
  // One abort race per reply (not per token).
  return new Promise<UsageEvent | undefined>((resolve, reject) => {
    const off = abort.onAbort(() => resolve(undefined));
    run.then(
      (u) => {
        off();
        resolve(abort.aborted ? undefined : u);
      },
      (e) => {
        off();
        if (abort.aborted) resolve(undefined);
        else reject(e);
      },
    );
  });
}

async function iterate(source: AsyncIterable<ModelEvent>, onDelta: DeltaSink, abort: TurnAbort): Promise<UsageEvent | undefined> {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  // Released at once on abort (not after the backend's next chunk, which may never come).
  const release = () => void Promise.resolve(it.return?.()).catch(() => undefined);
  const off = abort.onAbort(release);
  let usage: UsageEvent | undefined;
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) {
        finished = true;
        return usage;
      }
      if (abort.aborted) return undefined;
      const ev = r.value;
      if (ev.type === 'usage') usage = ev;
      else {
        const wait = onDelta(ev.content);
        if (wait) await wait;
      }
    }
  } finally {
    off();
    // A throw in onDelta or a backend error: release its connection too.
    if (!finished && !abort.aborted) release();
  }
}
