import fs from 'node:fs';
import path from 'node:path';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/database.js';
import { ApiError } from '../errors.js';
import { AGENT_TOKEN_MAX_TTL_SEC, agentAudience, type TokenService } from './tokens.js';

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

export interface CredentialDeployment {
  id: string;
  nft_token_id: string;
  status: string;
  endpoint_url: string | null;
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
  private readonly upsertGrant;
  private readonly revokedStmt;
  private readonly pruneStmt;
  private readonly holdersStmt;
  private readonly cutoffGet;
  private readonly cutoffSet;
  private readonly deploymentById;
  private readonly latestDeployment;
  /** nft -> cut-off ms (0: none); filled lazily, updated by ownershipLost */
  private readonly cutoffs = new Map<string, number>();
  private readonly lostListeners: ((nft: string, at: number) => void)[] = [];
  private lastPrune = 0;

  constructor(
    private readonly db: Db,
    private readonly tokens: TokenService,
    dataDir: string,
    private readonly now: () => number,
    readonly agentTokenTtlSec = 600,
  ) {
    if (agentTokenTtlSec < 1 || agentTokenTtlSec > AGENT_TOKEN_MAX_TTL_SEC) throw new RangeError(`agent token TTL must be 1..${AGENT_TOKEN_MAX_TTL_SEC} s`);
    this.key = loadOrCreateKey(dataDir);
    this.upsertGrant = db.prepare<[string, string, number]>(
      `INSERT INTO agent_token_grants (nft_token_id, session_id, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (nft_token_id, session_id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`,
    );
    this.revokedStmt = db.prepare<[string, number], { session_id: string }>(
      `SELECT g.session_id FROM agent_token_grants g JOIN sessions s ON s.id = g.session_id
       WHERE g.nft_token_id = ? AND g.expires_at > ? AND s.revoked_at IS NOT NULL`,
    );
    this.pruneStmt = db.prepare<[number]>('DELETE FROM agent_token_grants WHERE expires_at <= ?');
    this.holdersStmt = db.prepare<[string, number], { wallet: string }>(
      `SELECT DISTINCT s.wallet FROM agent_token_grants g JOIN sessions s ON s.id = g.session_id
       WHERE g.nft_token_id = ? AND g.expires_at > ?`,
    );
    this.cutoffGet = db.prepare<[string], { not_before: number }>('SELECT not_before FROM agent_token_cutoffs WHERE nft_token_id = ?');
    this.cutoffSet = db.prepare<[string, number]>(
      `INSERT INTO agent_token_cutoffs (nft_token_id, not_before) VALUES (?, ?)
       ON CONFLICT (nft_token_id) DO UPDATE SET not_before = max(not_before, excluded.not_before)`,
    );
    // Read-only views of the deployments table (the runtime feature owns its writes).
    this.deploymentById = db.prepare<[string], CredentialDeployment>('SELECT id, nft_token_id, status, endpoint_url FROM deployments WHERE id = ?');
    this.latestDeployment = db.prepare<[string], CredentialDeployment & { provider: string }>(
      'SELECT id, nft_token_id, status, endpoint_url, provider FROM deployments WHERE nft_token_id = ? ORDER BY created_at DESC LIMIT 1',
    );
  }

  /** A token only the agent of `nft` accepts, bound to session `sid` (revoked with it). */
  async mintAgentToken(claims: { sub: string; nft: string; sid: string }): Promise<{ token: string; expiresIn: number; audience: string }> {
    const audience = agentAudience(claims.nft);
    const t = await this.tokens.issue({ ...claims, aud: audience }, this.agentTokenTtlSec);
    this.upsertGrant.run(claims.nft, claims.sid, this.now() + t.expiresIn * 1000);
    this.pruneAtMostPerMinute();
    return { ...t, audience };
  }

  /** The latest deployment of an NFT (for the token route's endpoint_url). */
  latestDeploymentOf(nft: string): (CredentialDeployment & { provider: string }) | undefined {
    return this.latestDeployment.get(nft);
  }

  /** The credential handed to the agent of deployment `deploymentId` (in its secrets). */
  credentialFor(deploymentId: string, nft: string): string {
    return `${CREDENTIAL_PREFIX}${Buffer.from(deploymentId).toString('base64url')}.${this.mac(deploymentId, nft)}`;
  }

  /**
   * Checks `Authorization: Bearer pac_...` for a question about `nft`. UNAUTHORIZED when it is
   * missing, malformed, forged, for another NFT, or its deployment is no longer live.
   */
  verifyCredential(authorization: string | undefined, nft: string): CredentialDeployment {
    const bad = (reason: string) => new ApiError('UNAUTHORIZED', 'Invalid agent credential', { reason });
    const m = authorization && /^Bearer\s+pac_([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{43})$/i.exec(authorization.trim());
    if (!m) throw bad('missing or malformed');
    const id = Buffer.from(m[1]!, 'base64url').toString('utf8');
    const want = Buffer.from(this.mac(id, nft));
    const got = Buffer.from(m[2]!);
    // A credential for another NFT fails here too: the NFT is part of what is MACed.
    if (want.length !== got.length || !timingSafeEqual(want, got)) throw bad('not a credential for this NFT');
    const d = this.deploymentById.get(id);
    if (!d || d.nft_token_id !== nft) throw bad('unknown deployment');
    if (!LIVE.has(d.status)) throw bad(`the deployment is ${d.status}`);
    return d;
  }

  /** What the agent of `nft` must refuse now. */
  revocations(nft: string, deployment: CredentialDeployment): AgentRevocations {
    const cutoff = this.cutoffMs(nft);
    // Cut-offs older than the longest agent token matter to no token still alive.
    const relevant = cutoff > this.now() - AGENT_TOKEN_MAX_TTL_SEC * 1000;
    return {
      nft_token_id: nft,
      revoked_sessions: this.revokedStmt.all(nft, this.now()).map((r) => r.session_id),
      not_before: relevant ? Math.floor(cutoff / 1000) : null,
      endpoint_url: deployment.endpoint_url,
    };
  }

  /** Refused because ownership of its NFT was lost after it was issued. */
  isCutOff(nft: string, iatSec: number | undefined): boolean {
    const cutoff = this.cutoffMs(nft);
    return cutoff > 0 && (iatSec ?? 0) <= Math.floor(cutoff / 1000);
  }

  /**
   * Ownership of `nft` moved away (a transfer, a registry reassignment, a refresh that found the
   * wallet no longer owns it): every agent token for it issued until now stops working, here at
   * once and at a remote agent within its revocation-poll bound.
   */
  ownershipLost(nft: string, at = this.now()): void {
    this.cutoffSet.run(nft, at);
    this.cutoffs.set(nft, Math.max(this.cutoffs.get(nft) ?? 0, at));
    for (const l of this.lostListeners) l(nft, at);
  }

  /**
   * The owner of `nft` is now `owner` (undefined: nobody): when a live agent token of the NFT is
   * held by another wallet, ownership was lost for it, so every agent token of the NFT is cut off
   * (the owner's own are exchanged again). Re-asserting the same owner cuts nothing.
   */
  ownerIs(nft: string, owner: string | undefined): boolean {
    const held = this.holdersStmt.all(nft, this.now()).map((r) => r.wallet);
    const lost = held.some((w) => owner === undefined || w.toLowerCase() !== owner.toLowerCase());
    if (lost) this.ownershipLost(nft);
    return lost;
  }

  /** Told after ownershipLost (e.g. to close live streams of that NFT). */
  onOwnershipLost(listener: (nft: string, at: number) => void): void {
    this.lostListeners.push(listener);
  }

  private cutoffMs(nft: string): number {
    let c = this.cutoffs.get(nft);
    if (c === undefined) {
      c = this.cutoffGet.get(nft)?.not_before ?? 0;
      if (this.cutoffs.size > 100_000) this.cutoffs.clear();
      this.cutoffs.set(nft, c);
    }
    return c;
  }

  private mac(deploymentId: string, nft: string): string {
    return createHmac('sha256', this.key).update(`agent-credential\0${deploymentId}\0${nft}`).digest('base64url');
  }

  private pruneAtMostPerMinute(): void {
    const now = this.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    this.pruneStmt.run(now);
  }
}
