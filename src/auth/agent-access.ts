import fs from 'node:fs';
import path from 'node:path';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/database.js';
import { ApiError } from '../errors.js';
import { AGENT_TOKEN_MAX_TTL_SEC, agentAudience, type TokenService } from './tokens.js';
import type { AgentGrantStore, CredentialDeployment } from './agent-grant-store.js';
import { SqliteAgentGrantStore } from './agent-grant-store.sqlite.js';
import type { SecretStore } from './secret-store.js';

export const AGENT_CREDENTIAL_KEY_FILE = 'agent-credential-key';
const CREDENTIAL_PREFIX = 'pac_';
/** Deployments in these states may still have an agent running that asks us things. */
const LIVE = new Set(['pending', 'deploying', 'running', 'stopping']);

/** What a remote agent pulls: the sessions whose agent tokens it must refuse, and its cut-off. */
export interface AgentRevocations {
  nft_token_id: string;
  /** ids of revoked sessions that were given an agent token for this NFT that has not expired */
  revoked_sessions: string[];
  /** refuse agent tokens for this NFT issued at or before this time (unix seconds); null: none */
  not_before: number | null;
  /** the agent's public endpoint as the orchestrator knows it (the agent names it in sign-in messages) */
  endpoint_url: string | null;
}

export type { CredentialDeployment } from './agent-grant-store.js';

/** The HMAC key of deployment credentials (base64url text of 32 bytes), created once, shared by every node. */
export async function loadAgentCredentialKey(secrets: SecretStore): Promise<Buffer> {
  const raw = await secrets.getOrCreate(AGENT_CREDENTIAL_KEY_FILE, () => Buffer.from(randomBytes(32).toString('base64url')));
  return Buffer.from(raw.toString('utf8').trim(), 'base64url');
}

/** Loads the HMAC key of deployment credentials from the data dir, creating it (0600) once. */
function loadOrCreateKey(dataDir: string): Buffer {
  const file = path.join(dataDir, AGENT_CREDENTIAL_KEY_FILE);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dataDir, { recursive: true });
    try {
      fs.writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64url');
}

/**
 * The orchestrator's side of agent-scoped access:
 * - mints short-lived tokens with audience `agent:{nft}` bound to a session, and remembers which
 *   sessions hold one for which NFT (so a remote agent's revocation list stays small and names
 *   only sessions that touched it);
 * - per-deployment credentials a remote agent uses to ask us about its own NFT only (owner,
 *   revocations). A credential is HMAC(key, deployment id, nft): nothing stored, and it stops
 *   working when its deployment is no longer live (stopped or failed);
 * - `ownershipLost(nft)`: the one call that ends every agent token of an NFT (transfer detection
 *   calls it; remote agents learn it from their next pull).
 * Session revocations (logout, refresh-token reuse) need no call: the list reads `sessions`.
 */
export class AgentAccess {
  private readonly key: Buffer;
  private readonly store: AgentGrantStore;
  /** nft -> cut-off ms (0: none); filled lazily, raised by ownershipLost and cutoffChanged */
  private readonly cutoffs = new Map<string, number>();
  private readonly lostListeners: ((nft: string, at: number, remote: boolean) => void)[] = [];
  private lastPrune = 0;

  /**
   * `db`: the SQLite database, or the grant store (PostgreSQL in a cluster); `key`: the data
   * dir holding the credential key file, or the key itself (loadAgentCredentialKey).
   */
  constructor(
    db: Db | AgentGrantStore,
    private readonly tokens: TokenService,
    key: string | Buffer,
    private readonly now: () => number,
    readonly agentTokenTtlSec = 600,
  ) {
    if (agentTokenTtlSec < 1 || agentTokenTtlSec > AGENT_TOKEN_MAX_TTL_SEC) throw new RangeError(`agent token TTL must be 1..${AGENT_TOKEN_MAX_TTL_SEC} s`);
    this.key = typeof key === 'string' ? loadOrCreateKey(key) : key;
    this.store = 'prepare' in db ? new SqliteAgentGrantStore(db) : db;
  }

  /** A token only the agent of `nft` accepts, bound to session `sid` (revoked with it). */
  async mintAgentToken(claims: { sub: string; nft: string; sid: string }): Promise<{ token: string; expiresIn: number; audience: string }> {
    const audience = agentAudience(claims.nft);
    const t = await this.tokens.issue({ ...claims, aud: audience }, this.agentTokenTtlSec);
    await this.store.grant(claims.nft, claims.sid, this.now() + t.expiresIn * 1000);
    await this.pruneAtMostPerMinute();
    return { ...t, audience };
  }

  /** The latest deployment of an NFT (for the token route's endpoint_url). */
  latestDeploymentOf(nft: string): Promise<(CredentialDeployment & { provider: string }) | undefined> {
    return this.store.latestDeployment(nft);
  }

  /** The credential handed to the agent of deployment `deploymentId` (in its secrets). */
  credentialFor(deploymentId: string, nft: string): string {
    return `${CREDENTIAL_PREFIX}${Buffer.from(deploymentId).toString('base64url')}.${this.mac(deploymentId, nft)}`;
  }

  /**
   * Checks `Authorization: Bearer pac_...` for a question about `nft`. UNAUTHORIZED when it is
   * missing, malformed, forged, for another NFT, or its deployment is no longer live.
   */
  async verifyCredential(authorization: string | undefined, nft: string): Promise<CredentialDeployment> {
    const bad = (reason: string) => new ApiError('UNAUTHORIZED', 'Invalid agent credential', { reason });
    const m = authorization && /^Bearer\s+pac_([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{43})$/i.exec(authorization.trim());
    if (!m) throw bad('missing or malformed');
    const id = Buffer.from(m[1]!, 'base64url').toString('utf8');
    const want = Buffer.from(this.mac(id, nft));
    const got = Buffer.from(m[2]!);
    // A credential for another NFT fails here too: the NFT is part of what is MACed.
    if (want.length !== got.length || !timingSafeEqual(want, got)) throw bad('not a credential for this NFT');
    const d = await this.store.deployment(id);
    if (!d || d.nft_token_id !== nft) throw bad('unknown deployment');
    if (!LIVE.has(d.status)) throw bad(`the deployment is ${d.status}`);
    return d;
  }

  /** What the agent of `nft` must refuse now. */
  async revocations(nft: string, deployment: CredentialDeployment): Promise<AgentRevocations> {
    const cutoff = await this.cutoffMs(nft);
    // Cut-offs older than the longest agent token matter to no token still alive.
    const relevant = cutoff > this.now() - AGENT_TOKEN_MAX_TTL_SEC * 1000;
    return {
      nft_token_id: nft,
      revoked_sessions: await this.store.revokedSessions(nft, this.now()),
      not_before: relevant ? Math.floor(cutoff / 1000) : null,
      endpoint_url: deployment.endpoint_url,
    };
  }

  /** Refused because ownership of its NFT was lost after it was issued. */
  isCutOff(nft: string, iatSec: number | undefined): boolean | Promise<boolean> {
    const cut = (cutoff: number) => cutoff > 0 && (iatSec ?? 0) <= Math.floor(cutoff / 1000);
    // The hot path (a request with an agent token) is a Map lookup; the store only on a miss.
    const c = this.cutoffs.get(nft);
    return c !== undefined ? cut(c) : this.cutoffMs(nft).then(cut);
  }

  /**
   * Ownership of `nft` moved away (a transfer, a registry reassignment, a refresh that found the
   * wallet no longer owns it): every agent token for it issued until now stops working, here at
   * once and at a remote agent within its revocation-poll bound.
   */
  async ownershipLost(nft: string, at = this.now()): Promise<void> {
    // Refused here at once, before the write: this node must not accept them meanwhile.
    this.cutoffs.set(nft, Math.max(this.cutoffs.get(nft) ?? 0, at));
    await this.store.raiseCutoff(nft, at);
    for (const l of this.lostListeners) l(nft, at, false);
  }

  /**
   * Another node raised the cut-off of `nft` (its ownershipLost, broadcast by the cluster):
   * this node's cache follows and its listeners run (they end this node's streams of the NFT).
   */
  cutoffChanged(nft: string, at: number): void {
    const c = this.cutoffs.get(nft);
    if (c !== undefined && c >= at) return;
    this.cutoffs.set(nft, at);
    for (const l of this.lostListeners) l(nft, at, true);
  }

  /**
   * The owner of `nft` is now `owner` (undefined: nobody): when a live agent token of the NFT is
   * held by another wallet, ownership was lost for it, so every agent token of the NFT is cut off
   * (the owner's own are exchanged again). Re-asserting the same owner cuts nothing.
   */
  async ownerIs(nft: string, owner: string | undefined): Promise<boolean> {
    const held = await this.store.holders(nft, this.now());
    const lost = held.some((w) => owner === undefined || w.toLowerCase() !== owner.toLowerCase());
    if (lost) await this.ownershipLost(nft);
    return lost;
  }

  /** Told after ownershipLost here (`remote` false: publish it to the cluster) or cutoffChanged (`remote` true). */
  onOwnershipLost(listener: (nft: string, at: number, remote: boolean) => void): void {
    this.lostListeners.push(listener);
  }

  private async cutoffMs(nft: string): Promise<number> {
    let c = this.cutoffs.get(nft);
    if (c === undefined) {
      const stored = await this.store.cutoff(nft);
      // A raise seen while reading wins.
      c = Math.max(stored, this.cutoffs.get(nft) ?? 0);
      if (this.cutoffs.size > 100_000) this.cutoffs.clear();
      this.cutoffs.set(nft, c);
    }
    return c;
  }

  private mac(deploymentId: string, nft: string): string {
    return createHmac('sha256', this.key).update(`agent-credential\0${deploymentId}\0${nft}`).digest('base64url');
  }

  private async pruneAtMostPerMinute(): Promise<void> {
    const now = this.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    await this.store.prune(now);
  }
}
