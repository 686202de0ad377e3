/**
 * Answers "who owns NFT T now". Implementations live in adapters/ownership (registry, evm).
 * ownerOf resolves undefined for a token that does not exist, and throws
 * ApiError SERVICE_UNAVAILABLE when the source of truth cannot be reached.
 */
export interface OwnershipVerifier {
  readonly kind: string;
  /**
   * True when answers come from this machine (a local table or file): they are then never
   * cached, so `panthers nft assign` takes effect at once instead of after the cache TTL.
   */
  readonly local?: boolean;
  ownerOf(nftTokenId: string): Promise<string | undefined>;
  /**
   * The NFTs a wallet holds, when the source can list them (the registry; an ERC-721 contract
   * with the Enumerable extension). Resolves undefined when it cannot: the holder then types
   * a token id. At most `limit` ids from `offset`, and how many there are in all.
   */
  listOwned?(wallet: string, limit: number, offset: number): Promise<OwnedPage | undefined>;
  /**
   * The NFTs whose owner may have changed since the last call (registry: rows or file entries
   * that differ; evm: tokens named by Transfer logs since a persisted block). The caller checks
   * each with ownerOf, then calls commit() so the progress is kept. Throws SERVICE_UNAVAILABLE
   * when the source cannot be read (nothing is committed; the next call retries).
   */
  changes?(): Promise<OwnershipChanges>;
  /** Forget cached answers (after a write this process made). */
  invalidate?(nftTokenId?: string): void;
  close?(): void;
}

export interface OwnedPage {
  tokens: string[];
  total: number;
}

export interface OwnershipChanges {
  ids: string[];
  commit?(): void | Promise<void>;
}

/** Wallet addresses compare case-insensitively (EIP-55 checksums are case; bech32 is lowercase). */
export function sameWallet(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Caches answers for a short TTL so deploy and chat can re-check ownership cheaply. */
export class CachedOwnership implements OwnershipVerifier {
  private readonly cache = new Map<string, { owner: string | undefined; until: number }>();
  /** the last answer per NFT, whatever its age (for synchronous callers: see peek) */
  private readonly lastKnown = new Map<string, string | undefined>();
  readonly kind: string;

  constructor(private readonly inner: OwnershipVerifier, private readonly ttlMs: number, private readonly now: () => number = Date.now) {
    this.kind = inner.kind;
  }

  async ownerOf(nftTokenId: string): Promise<string | undefined> {
    if (this.inner.local) return this.known(nftTokenId, await this.inner.ownerOf(nftTokenId));
    const hit = this.cache.get(nftTokenId);
    const now = this.now();
    if (hit && hit.until > now) return hit.owner;
    const owner = await this.inner.ownerOf(nftTokenId);
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(nftTokenId, { owner, until: now + this.ttlMs });
    return this.known(nftTokenId, owner);
  }

  /**
   * The owner this process last saw for an NFT (no lookup; undefined when never asked). For
   * synchronous decisions, e.g. which system prompt an agent answers with after a transfer:
   * every request to the agent has checked ownership (and so refreshed this) just before.
   */
  peek(nftTokenId: string): string | undefined {
    return this.lastKnown.get(nftTokenId);
  }

  private known(nft: string, owner: string | undefined): string | undefined {
    if (this.lastKnown.size >= 100_000 && !this.lastKnown.has(nft)) this.lastKnown.clear();
    this.lastKnown.set(nft, owner);
    return owner;
  }

  async owns(wallet: string, nftTokenId: string): Promise<boolean> {
    const owner = await this.ownerOf(nftTokenId);
    return owner !== undefined && sameWallet(owner, wallet);
  }

  /** Listing is not cached: it is asked once per console sign-in, not on every request. */
  listOwned(wallet: string, limit: number, offset: number): Promise<OwnedPage | undefined> {
    return this.inner.listOwned ? this.inner.listOwned(wallet, limit, offset) : Promise.resolve(undefined);
  }

  changes(): Promise<OwnershipChanges> {
    return this.inner.changes ? this.inner.changes() : Promise.resolve({ ids: [] });
  }

  get watchable(): boolean {
    return this.inner.changes !== undefined;
  }

  /** Forget a cached answer (after `nft assign`, or when a test changes owners). */
  invalidate(nftTokenId?: string): void {
    if (nftTokenId === undefined) this.cache.clear();
    else this.cache.delete(nftTokenId);
    this.inner.invalidate?.(nftTokenId);
  }

  close(): void {
    this.inner.close?.();
  }
}
