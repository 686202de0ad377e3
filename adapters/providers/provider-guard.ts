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
