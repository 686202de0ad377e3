import type { Logger } from '../logger.js';
import { sameWallet, type CachedOwnership } from './ownership.js';

/** An active session as the watcher sees it. */
export interface ActiveSession {
  id: string;
  wallet: string;
}

export interface OwnershipWatcherDeps {
  ownership: CachedOwnership;
  log: Logger;
  /** how often the source is asked for changes */
  intervalMs: number;
  /** active (not revoked, not expired) sessions opened for an NFT */
  sessionsOf(nft: string): ActiveSession[] | Promise<ActiveSession[]>;
  /** NFTs with at least one active session (a full reconcile at start) */
  nftsWithSessions(): string[] | Promise<string[]>;
  /** whether to reconcile every NFT with sessions at start (cheap for a local registry) */
  reconcileOnStart: boolean;
  /** revokes a session whose wallet no longer owns its NFT (ends its sockets, audits why) */
  revoke(sid: string): Promise<void>;
  /** the NFT has a new owner (or none): drop others' subscriptions, apply the conversation policy */
  transferred(nft: string, owner: string | undefined, previous: string[]): void | Promise<void>;
}

/**
 * Follows NFT ownership: every intervalMs it asks the verifier which NFTs may have changed hands
 * (registry: a diff of the table and owners file; evm: Transfer logs since a persisted block),
 * asks ownerOf for each (the truth), and revokes the sessions of wallets that no longer own it.
 * A revocation thus lands within one interval (plus an RPC round trip) of the change becoming
 * visible to this server. A failing source is retried on the next tick; nothing is skipped.
 */
export class OwnershipWatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** set by tests and the note's measurement: when each NFT's revocations were done */
  onSettled?: (nft: string, revoked: number) => void;

  constructor(private readonly deps: OwnershipWatcherDeps) {}

  start(): void {
    if (!this.deps.ownership.watchable) return;
    const first = async () => (this.deps.reconcileOnStart ? await this.deps.nftsWithSessions() : []);
    this.running = first().then((ids) => this.tick(ids), (e) => this.deps.log.warn({ err: e }, 'reading sessions to reconcile failed; the next tick looks again')).finally(() => (this.running = undefined));
    this.timer = setInterval(() => {
      if (this.running || this.stopped) return; // one tick at a time; a slow RPC delays, never overlaps
      this.running = this.tick().finally(() => (this.running = undefined));
    }, this.deps.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  /** One poll: exposed so tests need not wait for the timer. */
  async tick(extra: string[] = []): Promise<void> {
    const { ownership, log } = this.deps;
    let changes;
    try {
      changes = await ownership.changes();
    } catch (e) {
      log.warn({ err: e }, 'ownership changes unavailable; retrying on the next tick');
      return;
    }
    const ids = new Set([...changes.ids, ...extra]);
    for (const nft of ids) {
      if (this.stopped) return;
      try {
        await this.settle(nft);
      } catch (e) {
        // ownerOf failed: keep the cursor where it was so this NFT is looked at again.
        log.warn({ err: e, nft }, 'ownership check failed; retrying on the next tick');
        return;
      }
    }
    await changes.commit?.();
  }

  private async settle(nft: string): Promise<void> {
    const { ownership } = this.deps;
    ownership.invalidate(nft);
    const owner = await ownership.ownerOf(nft);
    const stale = (await this.deps.sessionsOf(nft)).filter((s) => owner === undefined || !sameWallet(s.wallet, owner));
    for (const s of stale) await this.deps.revoke(s.id);
    const previous = [...new Set(stale.map((s) => s.wallet))];
    await this.deps.transferred(nft, owner, previous);
    if (stale.length) this.deps.log.info({ nft, owner, revoked: stale.length }, 'NFT changed hands: previous owner sessions revoked');
    this.onSettled?.(nft, stale.length);
  }
}
