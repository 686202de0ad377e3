/**
 * A check run right before each provider HTTP call made under a given AbortSignal. Cluster mode:
 * the deployment actor registers "this node still holds the NFT's lease, trusted on its own
 * monotonic clock" for its work's signal, so a node that was paused past its lease (SIGSTOP, a
 * long GC) makes no provider call from an overdue poll or timer after it resumes, even before it
 * learns it lost the lease (issue 17e finding 2).
 */
const guards = new WeakMap<AbortSignal, () => void>();

/** The guard refused the call: not a network error, never retried. */
export class ProviderCallRefused extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'ProviderCallRefused';
  }
}

export function guardProviderCalls(signal: AbortSignal, check: () => void): void {
  guards.set(signal, check);
}

/**
 * A signal that never aborts but carries `signal`'s guard, for a call that a stop must not cut
 * (a create that may land anyway, closing what a failed deploy made) yet that must not leave a
 * node which no longer holds the lease: without a signal a call has no guard at all. Undefined
 * when `signal` has no guard (one process): the call goes out unguarded, as before.
 */
export function guardOnly(signal: AbortSignal | undefined): AbortSignal | undefined {
  const check = signal && guards.get(signal);
  if (!check) return undefined;
  const only = new AbortController().signal;
  guards.set(only, check);
  return only;
}

/** Throws ProviderCallRefused when the signal's guard refuses. */
export function checkProviderCall(signal: AbortSignal | undefined): void {
  const check = signal && guards.get(signal);
  if (!check) return;
  try {
    check();
  } catch (e) {
    throw new ProviderCallRefused(e);
  }
}

/** Where Node's bundled undici keeps fetch's global dispatcher (undici lib/global.js). */
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

interface UndiciHandler {
  onConnect?(abort: (err?: Error) => void, context?: unknown): void;
}
interface UndiciDispatcher {
  dispatch(opts: unknown, handler: UndiciHandler): boolean;
}

/**
 * A fetch `dispatcher` that runs the signal's guard once more at the last moment a call can be
 * stopped unsent. The check in checkProviderCall runs before fetch starts; between it and the
 * socket write there can be a wait for a pooled connection or a TCP connect, and a node paused
 * there (SIGSTOP) would write the request after it resumed, its lease long gone. undici calls the request's `onConnect` synchronously right before it writes the request
 * line to the socket (lib/dispatcher/client-h1.js, writeH1: `request.onConnect(abort)`, then
 * `if (request.aborted) return false`, then the write; undici 6.x, bundled in Node 20); a throw
 * there fails the request with nothing written. What is left is the few instructions between
 * that check and the write(2) itself: no check in user space is atomic with a write against a
 * signal that stops the process anywhere.
 *
 * Undefined when the signal has no guard, or fetch's dispatcher is not where undici puts it.
 */
export function guardedDispatcher(signal: AbortSignal | undefined): UndiciDispatcher | undefined {
  const check = signal && guards.get(signal);
  if (!check) return undefined;
  const g = globalThis as Record<symbol, unknown>;
  // Node loads its undici, which installs the global dispatcher, on the first Request or fetch.
  if (g[GLOBAL_DISPATCHER] === undefined) void new Request('http://127.0.0.1/');
  const base = g[GLOBAL_DISPATCHER] as UndiciDispatcher | undefined;
  if (typeof base?.dispatch !== 'function') return undefined;
  return {
    dispatch(opts, handler) {
      const onConnect = handler.onConnect;
      handler.onConnect = function (this: UndiciHandler, abort, context) {
        try {
          check();
        } catch (e) {
          throw new ProviderCallRefused(e);
        }
        return onConnect?.call(this, abort, context);
      };
      return base.dispatch(opts, handler);
    },
  };
}
