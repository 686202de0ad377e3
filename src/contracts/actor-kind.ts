/**
 * What an actor kind is, as the registry runs it (actors/registry.ts). Declared here so the
 * composition code (app.ts, features that register kinds) and the actors agree on one shape
 * without src/ importing actors/.
 */

/** What an actor of some kind does with its messages. State lives in the object, rebuilt from the store. */
export interface Behaviour<M = unknown, R = unknown> {
  receive(msg: M): R | Promise<R>;
  /** Work still running outside the mailbox (a stream, a provider call): never passivate then. */
  busy?(): boolean;
  /**
   * Cluster handoff: true when stopping the actor now cuts nothing a move would lose, though it
   * is `busy` (a running deployment's health checks: a standing duty the next owner resumes).
   * Absent: movable once not busy.
   */
  movable?(): boolean;
  /**
   * Called when the actor stops: clear timers here. After a crash the actor is rebuilt from
   * the store and work it started outside the mailbox may go on and report to the new one.
   */
  stopped?(why: StopReason): void;
}

export type StopReason = 'passivated' | 'crashed' | 'shutdown';

/** A handle an actor uses to message itself later (e.g. when a provider call finishes). */
export interface SelfRef<M> {
  readonly key: string;
  tell(msg: M): void;
}

export interface ActorKind<M = unknown, R = unknown> {
  readonly name: string;
  /** Builds the actor for a key from persisted state. Called on first message after spawn or restart. */
  create(key: string, self: SelfRef<M>): Behaviour<M, R> | Promise<Behaviour<M, R>>;
  /** Crash backoff: base delay (doubles per crash in the window) and how many crashes before giving up. */
  backoffMs?: number;
  maxRestarts?: number;
}
