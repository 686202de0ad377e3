import fs from 'node:fs';
import type { Db } from '../../src/db/database.js';
import type { NftOwnerStore } from '../../src/auth/nft-owner-store.js';
import { SqliteNftOwnerStore } from '../../src/auth/nft-owner-store.sqlite.js';
import type { OwnedPage, OwnershipChanges, OwnershipVerifier } from '../../src/auth/ownership.js';

/**
 * The self-hosted default: owners come from the `nft_owners` table (managed by
 * `bin/panthers nft assign`) and, when set, PANTHERS_OWNERS_FILE (JSON { "<token>": "<owner>" }),
 * re-read whenever its modification time changes. The table wins over the file.
 */
export class RegistryOwnership implements OwnershipVerifier {
  readonly kind = 'registry';
  /** Answers are current (see below), so CachedOwnership's TTL cache is not applied on top. */
  readonly local = true;
  private fileOwners = new Map<string, string>();
  private fileStamp = '';
  private readonly store: NftOwnerStore;
  /**
   * Table answers, kept until the table may have changed: another connection's commit (the CLI's
   * `nft assign`, another node) changes the store's version(), checked at most every CHECK_MS; writes made through
   * this process's own connection call invalidate(). The owner lookup ran on every
   * authenticated request and was 14% of GET /deployments/{nft}.
   */
  private readonly cache = new Map<string, string>();
  private version = '';
  private checkedAt = 0;
  private static readonly CHECK_MS = 50;
  /** What changes() last saw: the effective owner of every NFT (table over file). */
  private snapshot: Map<string, string> | undefined;
  private snapshotVersion = '';
  private snapshotFileStamp = '';
  private dirty = false;

  constructor(db: Db | NftOwnerStore, private readonly ownersFile?: string, private readonly now: () => number = Date.now) {
    this.store = 'prepare' in db ? new SqliteNftOwnerStore(db) : db;
  }

  /**
   * The NFTs whose owner differs from the last call's view. Cheap when nothing changed (one
   * PRAGMA and one stat); otherwise one scan of the table, diffed against the previous scan.
   * The first call only takes the snapshot (owners before it are not "changes").
   */
  async changes(): Promise<OwnershipChanges> {
    const version = await this.store.version();
    this.reloadFile();
    if (this.snapshot && version === this.snapshotVersion && this.fileStamp === this.snapshotFileStamp && !this.dirty) return { ids: [] };
    this.dirty = false;
    this.snapshotVersion = version;
    this.snapshotFileStamp = this.fileStamp;
    const next = new Map(this.fileOwners);
    for (const r of await this.store.all()) next.set(r.nft_token_id, r.owner);
    const prev = this.snapshot;
    this.snapshot = next;
    if (!prev) return { ids: [] };
    const ids: string[] = [];
    for (const [nft, owner] of next) if (prev.get(nft)?.toLowerCase() !== owner.toLowerCase()) ids.push(nft);
    for (const nft of prev.keys()) if (!next.has(nft)) ids.push(nft);
    // A changed answer must not come from the per-call cache.
    for (const nft of ids) this.cache.delete(nft);
    return { ids };
  }

  async ownerOf(nftTokenId: string): Promise<string | undefined> {
    const now = this.now();
    if (now - this.checkedAt >= RegistryOwnership.CHECK_MS) {
      this.checkedAt = now;
      const v = await this.store.version();
      if (v !== this.version) {
        this.version = v;
        this.cache.clear();
      }
    }
    const hit = this.cache.get(nftTokenId);
    if (hit !== undefined) return hit;
    const owner = await this.store.ownerOf(nftTokenId);
    if (owner !== undefined) {
      if (this.cache.size >= 100_000) this.cache.clear();
      this.cache.set(nftTokenId, owner);
      return owner;
    }
    this.reloadFile();
    return this.fileOwners.get(nftTokenId);
  }

  /** The wallet's tokens from the table and the file (the table wins for a token in both). */
  async listOwned(wallet: string, limit: number, offset: number): Promise<OwnedPage> {
    const w = wallet.toLowerCase();
    const tokens = new Set(await this.store.ownedBy(w));
    this.reloadFile();
    for (const [token, owner] of this.fileOwners) {
      if (owner.toLowerCase() === w && !tokens.has(token) && (await this.store.ownerOf(token)) === undefined) tokens.add(token);
    }
    const all = [...tokens].sort(byTokenId);
    return { tokens: all.slice(offset, offset + limit), total: all.length };
  }

  invalidate(nftTokenId?: string): void {
    // Our own connection's writes do not bump data_version: look again on the next changes().
    this.dirty = true;
    if (nftTokenId === undefined) this.cache.clear();
    else this.cache.delete(nftTokenId);
  }

  private reloadFile(): void {
    if (!this.ownersFile) return;
    let stamp: string;
    try {
      const st = fs.statSync(this.ownersFile);
      stamp = `${st.mtimeMs}:${st.size}`;
    } catch {
      this.fileOwners = new Map();
      this.fileStamp = '';
      return;
    }
    if (stamp === this.fileStamp) return;
    try {
      const parsed = JSON.parse(fs.readFileSync(this.ownersFile, 'utf8')) as unknown;
      const next = new Map<string, string>();
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        for (const [token, owner] of Object.entries(parsed)) if (typeof owner === 'string') next.set(token, owner);
      }
      this.fileOwners = next;
      this.fileStamp = stamp;
    } catch {
      // A file caught mid-write: keep the last good map and try again on the next call.
    }
  }
}

/** Writes (or replaces) an owner in the registry table. */
export function assignOwner(db: Db, nftTokenId: string, owner: string, now = Date.now()): void {
  db.prepare(
    'INSERT INTO nft_owners (nft_token_id, owner, updated_at) VALUES (?, ?, ?) ON CONFLICT (nft_token_id) DO UPDATE SET owner = excluded.owner, updated_at = excluded.updated_at',
  ).run(nftTokenId, owner, now);
}

export function listOwners(db: Db): { nft_token_id: string; owner: string; updated_at: number }[] {
  return db.prepare('SELECT nft_token_id, owner, updated_at FROM nft_owners ORDER BY nft_token_id').all() as never;
}

/** Numeric ids in numeric order, then the others by text. */
function byTokenId(a: string, b: string): number {
  const na = /^\d+$/.test(a);
  const nb = /^\d+$/.test(b);
  if (na && nb) return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  if (na !== nb) return na ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
