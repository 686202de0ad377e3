import type { ActorKind } from './actor-kind.js';

/**
 * Where routes, WS handlers and features send actor messages, without knowing where the actor
 * runs. One process: the local ActorRegistry (actors/registry.ts) is the directory. Cluster
 * mode: src/cluster/cluster-directory.ts asks locally when this node holds the key's shard
 * lease and forwards over NATS otherwise.
 *
 * A message that may cross nodes must be plain JSON data. The one exception is the agent's
 * `turn` (see agent-messages.ts): its callbacks and AbortSignal stay on the receiving node and
 * the cluster directory carries them as frames and a forwarded cancel.
 */
export interface ActorDirectory {
  /** Sends a message and waits for the reply; the actor's ApiErrors are rethrown as they were. */
  ask<R>(kind: string, key: string, msg: unknown, timeoutMs?: number): Promise<R>;
  /** Sends a message without waiting for a reply. */
  tell(kind: string, key: string, msg: unknown): void;
}

/**
 * The actors living in THIS process (the local registry): registering kinds, passivating, and
 * what shutdown and /metrics look at. Only the composition code and features that run actors
 * use it; requests go through an ActorDirectory.
 */
export interface LocalActors extends ActorDirectory {
  register(kind: ActorKind<any, any>): void;
  isLive(kind: string, key: string): boolean;
  passivate(kind: string, key: string): void;
  /** Every live actor's behaviour of a kind (shutdown: abort their work before the database closes). */
  behaviours<B>(kind: string): B[];
  count(kind: string): number;
  counts(): Record<string, number>;
  /** Passivates every idle actor now (it runs on a timer; tests call it). */
  sweep(): void;
  stopAll(): void;
}
