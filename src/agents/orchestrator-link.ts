import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AuthClaims } from '../server/route.js';
import type { AgentRevocations } from '../auth/agent-access.js';

export interface OrchestratorLinkOptions {
  /** the orchestrator's base URL (no /v1) */
  orchestratorUrl: string;
  nft: string;
  /** the per-deployment credential (PANTHERS_AGENT_CREDENTIAL) */
  credential: string;
  pollMs: number;
  /** orchestrator-issued tokens are refused when the last good pull is older than this */
  maxStaleMs: number;
  log: Logger;
  now?: () => number;
  fetch?: typeof fetch;
}

/** Longest answer read from the orchestrator (a revocation list is a few ids). */
const MAX_BODY_BYTES = 256 * 1024;
const REQUEST_TIMEOUT_MS = 5000;

/**
 * A standalone agent's line to its orchestrator, with its deployment credential:
 * - pulls the revocation list every `pollMs` (sessions ended by logout or refresh-token reuse,
 *   and the NFT's cut-off after an ownership loss) and checks every orchestrator-issued token
 *   against it. It fails closed: when no pull succeeded for `maxStaleMs`, such tokens are
 *   refused (SERVICE_UNAVAILABLE) rather than accepted unchecked. So a revocation stops working
 *   here within pollMs + one round trip while the orchestrator answers, and within maxStaleMs
 *   whatever happens to the network;
 * - learns its public endpoint from the same answer (an Akash lease URI exists only after the
 *   deployment was created, so the orchestrator tells the agent rather than the agent guessing
 *   from request headers a proxy or a phishing site could set);
 * - answers "who owns my NFT" (registry ownership) by asking the orchestrator.
 */
export class OrchestratorLink {
  private revoked = new Set<string>();
  private notBefore: number | null = null;
  private lastGood = 0;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private stopped = false;
  private failing = false;
  private readonly now: () => number;
  private readonly fetchFn: typeof fetch;
  private readonly base: string;
  /** the agent's public endpoint as the orchestrator reported it */
  endpointUrl: string | undefined;
  /** pulls that succeeded / failed (for logs and tests) */
  readonly stats = { ok: 0, failed: 0 };

  constructor(private readonly opts: OrchestratorLinkOptions) {
    this.now = opts.now ?? Date.now;
    this.fetchFn = opts.fetch ?? ((i, init) => globalThis.fetch(i, init));
    this.base = `${opts.orchestratorUrl.replace(/\/+$/, '')}/v1/agents/${encodeURIComponent(opts.nft)}`;
  }

  /** Starts polling; resolves after the first pull (successful or not). */
  async start(): Promise<void> {
    await this.pull();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Throws unless an orchestrator-issued token may be used here now. */
  check(claims: AuthClaims): void {
    if (this.now() - this.lastGood > this.opts.maxStaleMs) {
      // Unknown whether it was revoked: refuse rather than guess (and pull now).
      void this.pullNow();
      throw new ApiError('SERVICE_UNAVAILABLE', 'The agent cannot reach its orchestrator to check revocations; retry shortly', { reason: 'revocations_stale' });
    }
    if (this.revoked.has(claims.sid)) throw new ApiError('UNAUTHORIZED', 'The session of this token has ended; sign in again', { reason: 'session_revoked' });
    if (this.notBefore !== null && (claims.iat ?? 0) <= this.notBefore) {
      throw new ApiError('UNAUTHORIZED', 'This agent token was issued before ownership of the NFT changed', { reason: 'ownership_lost' });
    }
  }

  /** Who owns this agent's NFT, per the orchestrator (undefined: nobody / no such token). */
  async ownerOf(nft: string): Promise<string | undefined> {
    if (nft !== this.opts.nft) return undefined;
    const body = await this.get<{ owner_address: string | null }>('/owner');
    return body.owner_address ?? undefined;
  }

  /** Pull now (shared with a pull already under way). */
  pullNow(): Promise<void> {
    return (this.inflight ??= this.pull().finally(() => {
      this.inflight = undefined;
    }));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.pullNow().finally(() => this.schedule());
    }, this.opts.pollMs);
    this.timer.unref();
  }

  private async pull(): Promise<void> {
    const started = this.now();
    try {
      const r = await this.get<AgentRevocations>('/revocations');
      if (!Array.isArray(r.revoked_sessions)) throw new Error('malformed revocation list');
      this.revoked = new Set(r.revoked_sessions.filter((s) => typeof s === 'string'));
      this.notBefore = typeof r.not_before === 'number' ? r.not_before : null;
      if (typeof r.endpoint_url === 'string' && r.endpoint_url !== this.endpointUrl) {
        this.endpointUrl = r.endpoint_url;
        this.opts.log.info({ endpoint_url: r.endpoint_url }, 'public endpoint learned from the orchestrator');
      }
      // Good as of when the pull started: a revocation after that may not be in it.
      this.lastGood = started;
      this.stats.ok++;
    } catch (e) {
      this.stats.failed++;
      // Logged when a streak of failures starts and ends, not every pollMs.
      if (!this.failing) this.opts.log.warn({ err: { message: (e as Error).message } }, 'revocation pull failed');
      this.failing = true;
      return;
    }
    if (this.failing) this.opts.log.info('revocation pulls work again');
    this.failing = false;
  }

  private async get<T>(path: string): Promise<T> {
    let res: Response;
    try {
      res = await this.fetchFn(this.base + path, {
        headers: { authorization: `Bearer ${this.opts.credential}`, accept: 'application/json' },
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (e) {
      throw new ApiError('SERVICE_UNAVAILABLE', `Cannot reach the orchestrator: ${(e as Error).message}`);
    }
    const text = await readCapped(res, MAX_BODY_BYTES);
    if (!res.ok) throw new ApiError('SERVICE_UNAVAILABLE', `The orchestrator answered ${res.status} to ${path}`, { status: res.status });
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError('SERVICE_UNAVAILABLE', `The orchestrator's answer to ${path} is not JSON`);
    }
  }
}

async function readCapped(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new ApiError('SERVICE_UNAVAILABLE', 'The orchestrator answer is too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
