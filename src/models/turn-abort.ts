/**
 * A chat turn's cancellation: what an AbortController does for a turn, without an EventTarget.
 * The turn path asks "aborted?" and registers one or two callbacks per turn; Node's
 * AbortSignal costs an object graph, a brand-checked getter per read and an EventTarget
 * dispatch (about a tenth of turn admission's JavaScript in `bench/turn-burst.ts`). A real
 * AbortSignal is made only for an API that takes one (fetch to a model server): `signal`.
 */
export class TurnAbort {
  aborted = false;
  /** what abort() was given (undefined: the caller went away, no error to report) */
  reason: unknown = undefined;
  private callbacks: (() => void)[] | undefined;
  private controller: AbortController | undefined;

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const cbs = this.callbacks;
    this.callbacks = undefined;
    if (cbs) for (const cb of cbs) cb();
  }

  /** Calls `cb` once on abort (at once when already aborted); the returned function unregisters it. */
  onAbort(cb: () => void): () => void {
    if (this.aborted) {
      cb();
      return noop;
    }
    (this.callbacks ??= []).push(cb);
    return () => {
      const i = this.callbacks?.indexOf(cb) ?? -1;
      if (i >= 0) this.callbacks!.splice(i, 1);
    };
  }

  /** Aborts this (with its reason) when `signal` aborts; the returned function stops following. */
  follow(signal: AbortSignal): () => void {
    const onAbort = () => this.abort(signal.reason);
    if (signal.aborted) {
      onAbort();
      return noop;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    return () => signal.removeEventListener('abort', onAbort);
  }

  /** An AbortSignal that follows this abort, for APIs that take one; made on first use. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }
}

function noop(): void {}
