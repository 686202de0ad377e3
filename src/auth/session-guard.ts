import { ApiError } from '../errors.js';
import type { AuthClaims } from '../server/route.js';
import { ORCHESTRATOR_AUDIENCE, agentAudience, type TokenService } from './tokens.js';
import type { SessionStore } from './session-store.js';
import type { AgentAccess } from './agent-access.js';

const MAX_CACHED = 100_000;

/**
 * Authenticates every request: the JWT (TokenService caches verified claims) and then its
 * session, which must exist and not be revoked. Session states are cached in memory so the
 * hot path is two Map lookups; a revocation updates the cache at once (logout works at once),
 * and the store answers for sessions not seen yet in this process (e.g. after a restart). In a
 * cluster a revocation on another node reaches this cache through `markRevoked`, called by the
 * revocation broadcast (panthers.revoke, 17d).
 */
export class SessionGuard {
  /** sid -> active (true) or revoked/unknown (false) */
  private readonly states = new Map<string, boolean>();

  private readonly audiences = [ORCHESTRATOR_AUDIENCE];
  private readonly agentAudiences = new Map<string, string[]>();

  constructor(
    private readonly tokens: TokenService,
    private readonly sessions: Pick<SessionStore, 'get'>,
    private readonly agentAccess?: AgentAccess,
  ) {}

  /**
   * Orchestrator routes accept only orchestrator-audience tokens; a request to the embedded agent
   * of `agentNft` also accepts that NFT's agent tokens (not cut off by an ownership loss).
   */
  readonly authenticate = async (token: string, agentNft?: string): Promise<AuthClaims> => {
    const claims = await this.tokens.verify(token, agentNft === undefined ? this.audiences : this.agentAudiencesFor(agentNft));
    const active = this.states.get(claims.sid) ?? (await this.isActive(claims.sid));
    if (!active) throw new ApiError('UNAUTHORIZED', 'The session of this token has ended; sign in again');
    if (claims.aud !== ORCHESTRATOR_AUDIENCE && this.agentAccess && (await this.agentAccess.isCutOff(claims.nft, claims.iat))) {
      throw new ApiError('UNAUTHORIZED', 'This agent token was issued before ownership of the NFT changed', { reason: 'ownership_lost' });
    }
    return claims;
  };

  private agentAudiencesFor(nft: string): string[] {
    let a = this.agentAudiences.get(nft);
    if (!a) {
      a = [ORCHESTRATOR_AUDIENCE, agentAudience(nft)];
      if (this.agentAudiences.size > 10_000) this.agentAudiences.clear();
      this.agentAudiences.set(nft, a);
    }
    return a;
  }

  /** The store answers for sessions not seen yet (after a restart, or opened on another node). */
  async isActive(sid: string): Promise<boolean> {
    let state = this.states.get(sid);
    if (state === undefined) {
      const row = await this.sessions.get(sid);
      state = row !== undefined && row.revoked_at === null;
      // A revocation seen meanwhile (markRevoked) wins over what was read before it.
      if (this.states.get(sid) === false) return false;
      this.remember(sid, state);
    }
    return state;
  }

  markActive(sid: string): void {
    this.remember(sid, true);
  }

  markRevoked(sid: string): void {
    this.remember(sid, false);
  }

  private remember(sid: string, active: boolean): void {
    // Dropping the cache is always safe: SQLite is the truth and refills it.
    if (this.states.size >= MAX_CACHED && !this.states.has(sid)) this.states.clear();
    this.states.set(sid, active);
  }
}
