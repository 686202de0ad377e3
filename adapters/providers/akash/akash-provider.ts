import { createHash } from 'node:crypto';
import type { Config } from '../../../src/config.js';
import type { Logger } from '../../../src/logger.js';
import type {
  DeployContext, DeployResult, DeploySpec, HealthReport, ProviderAdapter, ProviderRef, ProviderStatus,
} from '../../../src/providers/provider.js';
import { checkHealth, sleep, type RetryPolicy, type CallLimiter } from '../http-client.js';
import { assertPublicEndpoint, safeGet } from '../endpoint-guard.js';
import { guardOnly, ProviderCallRefused } from '../provider-guard.js';
import {
  deployFailure, mayHaveHappened, progressReporter, resourceName, secretScrubber, toProviderError,
} from '../remote-deploy.js';
import { AkashApi, type AkashDeployment, type AkashLease, type Bid, type BidId, type CreatedDeployment } from './akash-api.js';
import { AKASH_SERVICE, deploymentMarker, renderSdl } from './sdl.js';

export interface AkashProviderOptions {
  /** how long a leased agent may take to report a ready replica with a URI (default 10 min) */
  readyTimeoutMs?: number;
  /** HTTP retry tuning (tests shorten the backoff) */
  retry?: Partial<RetryPolicy>;
  /** times a create is attempted when its answer is lost (default 3) */
  createAttempts?: number;
  /** the provider's call limiter (its p-queue) */
  limit?: CallLimiter;
}

/** What the adapter persists in the ref: never the SDL or manifest (they carry the secrets). */
interface AkashRef {
  dseq?: string;
  gseq?: number;
  oseq?: number;
  provider?: string;
}

const DEFAULT_READY_TIMEOUT_MS = 600_000;
/** Bounds on the reconciliation scan of the owner's deployments. */
const LIST_PAGE = 100;
const LIST_PAGES = 5;
const MARKER_LOOKUPS = 25;

/**
 * Runs an NFT's agent on Akash through the Console managed-wallet API:
 * create deployment -> wait for bids -> lease the cheapest bid under the price cap -> wait for
 * the service to have a ready replica and a URI.
 */
export class AkashProvider implements ProviderAdapter {
  readonly name = 'akash' as const;
  private readonly api: AkashApi;
  private readonly log: Logger;
  private readonly readyTimeoutMs: number;
  private readonly createAttempts: number;
  /**
   * Manifests of created-but-not-yet-leased deployments. The lease needs the manifest the create
   * returned and it holds the agent's secrets: it goes to ctx.saveSecret (stored encrypted, deleted
   * once the lease is made) so a restart mid-bid resumes; this map only spares the decryption.
   */
  private readonly manifests = new Map<string, string>();

  constructor(private readonly config: Config, log: Logger, opts: AkashProviderOptions = {}) {
    this.log = log.child({ provider: 'akash' });
    this.api = new AkashApi(config.akash.apiUrl, () => config.akash.apiKey ?? '', config.deploy.providerTimeoutMs, this.log, opts.retry, opts.limit);
    this.readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.createAttempts = opts.createAttempts ?? 3;
  }

  missingConfig(): string | undefined {
    if (!this.config.akash.apiKey) {
      return 'the akash provider needs an Akash Console API key: set PANTHERS_AKASH_API_KEY (and PANTHERS_AKASH_API_URL for a console other than console-api.akash.network)';
    }
    return undefined;
  }

  async deploy(spec: DeploySpec, ctx: DeployContext): Promise<DeployResult> {
    const missing = this.missingConfig();
    if (missing) throw deployFailure('akash', 'not_configured', missing);
    const scrub = secretScrubber(spec.secrets);
    const progress = progressReporter(ctx);
    try {
      return await this.run(spec, ctx, progress);
    } catch (e) {
      throw toProviderError('akash', 'Akash', e, scrub, ctx.signal);
    }
  }

  private async run(spec: DeploySpec, ctx: DeployContext, progress: (p: number, m: string) => void): Promise<DeployResult> {
    const signal = ctx.signal;
    let ref: AkashRef = pickRef(ctx.ref);
    let leased = false;
    // The process lost track of a create it may have sent: look for it before creating, and
    // once more when running (a create still being processed may land after the first look).
    const lostCreate = ctx.resuming === true && !ref.dseq;
    let manifest: string | undefined;
    const stored = storedManifest(ctx.secret);
    if (stored && !this.manifests.has(stored.dseq)) this.manifests.set(stored.dseq, stored.manifest);

    if (ref.dseq) {
      const dep = await this.api.getDeployment(ref.dseq, signal);
      const lease = dep ? currentLease(dep) : undefined;
      if (dep && lease && lease.state === 'insufficient_funds') {
        throw deployFailure('akash', 'insufficient_funds', `Akash lease for deployment ${ref.dseq} has insufficient funds (lease state insufficient_funds)`, { dseq: ref.dseq });
      }
      if (dep && dep.deployment.state === 'active' && lease?.state === 'active') {
        leased = true;
        ref = { ...ref, ...leaseIds(lease, ref) };
        progress(50, `resuming Akash deployment ${ref.dseq}: lease already in place`);
      } else if (dep && dep.deployment.state === 'active' && this.manifests.has(ref.dseq)) {
        progress(10, `resuming Akash deployment ${ref.dseq}: waiting for bids`);
      } else {
        // Gone, closed, or created by an earlier process whose manifest (secret, never stored) is lost.
        if (dep && dep.deployment.state === 'active') await this.api.closeDeployment(ref.dseq, signal);
        this.log.info({ deployment_id: spec.deploymentId, dseq: ref.dseq }, 'previous Akash deployment cannot be resumed; creating a new one');
        ref = {};
      }
    }

    if (!ref.dseq) {
      // A create may have gone out before the process lost track of it: never leave it open.
      if (lostCreate) await this.closeStrays(spec.deploymentId, undefined, undefined, signal);
      const created = await this.create(spec, signal);
      manifest = created.manifest;
      ref = { dseq: created.dseq };
      // The manifest first, then the ref: a ref on disk always has its manifest next to it.
      await ctx.saveSecret?.(JSON.stringify(created));
      await ctx.saveRef({ ...ref });
      progress(10, `Akash deployment ${created.dseq} created`);
      // Cancelled while the create was in flight: it settled and its ref is saved; the caller closes it.
      signal.throwIfAborted();
    }
    const dseq = ref.dseq!;

    if (!leased) {
      const bid = await this.waitForBid(dseq, signal, progress);
      await this.lease(dseq, bid, signal);
      ref = { dseq, gseq: bid.id.gseq, oseq: bid.id.oseq, provider: bid.id.provider };
      await ctx.saveRef({ ...ref });
      await ctx.saveSecret?.(null);
      progress(50, `lease created with provider ${bid.id.provider}; manifest sent`);
    }

    const { uri, lease } = await this.waitForReady(dseq, signal, progress);
    if (lostCreate) await this.closeStrays(spec.deploymentId, dseq, manifest, signal);
    let endpointUrl: string;
    try {
      endpointUrl = await this.endpointFor(uri, signal);
    } catch (e) {
      // A provider pointing us at a private address: nothing of it is used, nothing left billing.
      await this.closeQuietly(dseq, 'private endpoint', signal);
      throw e;
    }
    this.log.info({ deployment_id: spec.deploymentId, dseq, endpoint: endpointUrl }, 'Akash agent ready');
    return {
      endpointUrl,
      ref: { ...ref },
      details: {
        dseq,
        akash_provider: ref.provider,
        lease_state: lease.state,
        ...(lease.price ? { price: `${lease.price.amount} ${lease.price.denom}` } : {}),
      },
    };
  }

  /**
   * POST /v1/deployments. A create that failed where it may have gone through is reconciled
   * before any retry: the owner's deployments are searched for our marker (the SDL env line
   * PANTHERS_DEPLOYMENT_ID=<id>, read back from the console's stored SDL). Such a deployment
   * cannot be leased (its manifest came back in the lost answer), so it is closed before the
   * next attempt: one lease, at most one open deployment per NFT.
   */
  private async create(spec: DeploySpec, signal: AbortSignal): Promise<CreatedDeployment> {
    const sdl = renderSdl(spec, this.config.akash);
    const name = resourceName(spec);
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted();
      try {
        // Not aborted by a stop: an abandoned create can still land at the console and bill.
        // It settles (bounded by the HTTP timeout), its ref is saved, and then the stop closes it.
        const created = await this.api.createDeployment(sdl, name, guardOnly(signal));
        this.manifests.set(created.dseq, created.manifest);
        this.log.info({ deployment_id: spec.deploymentId, dseq: created.dseq }, 'Akash deployment created');
        return created;
      } catch (e) {
        if (!mayHaveHappened(e) || signal.aborted) throw e;
        const orphans = await this.findByMarker(spec.deploymentId, signal);
        for (const dseq of orphans) {
          this.log.warn({ deployment_id: spec.deploymentId, dseq }, 'closing the Akash deployment whose create answer was lost');
          await this.api.closeDeployment(dseq, signal);
        }
        if (attempt >= this.createAttempts) throw e;
        this.log.warn({ deployment_id: spec.deploymentId, attempt, found: orphans.length }, 'Akash create failed; reconciled, retrying');
        await sleep(this.config.akash.pollIntervalMs, signal);
      }
    }
  }

  /**
   * Open, unleased deployments of this API key's owner that carry our deployment's marker (what
   * a lost create leaves: a lease is only made after the dseq was saved). Two ways to recognise one: the SDL the console kept
   * (consoleSettings.sdl, where the console returns it) holds the marker line, or its on-chain
   * `hash` (the manifest version: sha256 of the sorted manifest JSON, apps/api deployment-writer
   * create()) equals that of a manifest we hold for this deployment (same SDL, same manifest).
   */
  private async findByMarker(deploymentId: string, signal: AbortSignal, opts: { manifest?: string } = {}): Promise<string[]> {
    const marker = deploymentMarker(deploymentId);
    const hash = opts.manifest === undefined ? undefined : manifestHash(opts.manifest);
    const candidates: string[] = [];
    const found = new Set<string>();
    for (let page = 0; page < LIST_PAGES; page++) {
      const { deployments, hasMore } = await this.api.listDeployments(page * LIST_PAGE, LIST_PAGE, signal);
      for (const d of deployments) {
        if (d.deployment?.state !== 'active' || (d.leases ?? []).length > 0) continue;
        const dseq = String(d.deployment.id.dseq);
        if (hash !== undefined && d.deployment.hash === hash) found.add(dseq);
        else candidates.push(dseq);
      }
      if (!hasMore) break;
    }
    // dseq grows with time (the console uses Date.now()): the newest first, a bounded number of look-ups.
    candidates.sort((a, b) => b.length - a.length || (b > a ? 1 : b < a ? -1 : 0));
    for (const dseq of candidates.slice(0, MARKER_LOOKUPS)) {
      const dep = await this.api.getDeployment(dseq, signal);
      if (dep?.consoleSettings?.sdl?.includes(marker)) found.add(dseq);
    }
    return [...found];
  }

  /**
   * Closes the unleased deployments carrying this deployment's marker, except `keep`. With the
   * manifest of our own create, twins are recognised by hash too (same SDL, same manifest), which
   * works where the console does not return the SDL.
   */
  private async closeStrays(deploymentId: string, keep: string | undefined, manifest: string | undefined, signal: AbortSignal): Promise<void> {
    for (const dseq of await this.findByMarker(deploymentId, signal, { manifest })) {
      if (dseq === keep) continue;
      this.log.warn({ deployment_id: deploymentId, dseq }, 'closing an Akash deployment an earlier attempt created');
      await this.api.closeDeployment(dseq, signal);
    }
  }

  async findCreated(spec: DeploySpec, signal?: AbortSignal): Promise<ProviderRef[]> {
    if (this.missingConfig()) return [];
    const found = await this.findByMarker(spec.deploymentId, signal ?? new AbortController().signal);
    return found.map((dseq) => ({ dseq }));
  }

  private async waitForBid(dseq: string, signal: AbortSignal, progress: (p: number, m: string) => void): Promise<Bid> {
    const { bidTimeoutMs, pollIntervalMs, priceCap, denom } = this.config.akash;
    const deadline = Date.now() + bidTimeoutMs;
    progress(20, 'waiting for provider bids');
    let seen = 0;
    let cheapestAbove: Bid | undefined;
    for (;;) {
      const bids = await this.api.listBids(dseq, signal);
      const open = bids.filter((b) => b.state === 'open' && b.price.denom === denom);
      seen = Math.max(seen, bids.length);
      const affordable = open.filter((b) => Number(b.price.amount) <= priceCap);
      if (affordable.length > 0) {
        affordable.sort((a, b) => Number(a.price.amount) - Number(b.price.amount) || a.id.provider.localeCompare(b.id.provider));
        const bid = affordable[0]!;
        progress(30, `${bids.length} bid(s) received; chose provider ${bid.id.provider} at ${bid.price.amount} ${bid.price.denom} per block`);
        return bid;
      }
      for (const b of open) if (!cheapestAbove || Number(b.price.amount) < Number(cheapestAbove.price.amount)) cheapestAbove = b;
      if (Date.now() + pollIntervalMs > deadline) break;
      await sleep(pollIntervalMs, signal);
    }
    await this.closeQuietly(dseq, 'no usable bid', signal);
    const secs = Math.round(bidTimeoutMs / 1000);
    if (cheapestAbove) {
      throw deployFailure('akash', 'no_bids', `no Akash bid under the price cap of ${priceCap} ${denom} within ${secs} s (cheapest was ${cheapestAbove.price.amount} ${denom})`, { dseq });
    }
    throw deployFailure('akash', 'no_bids', `no Akash provider bid on the deployment within ${secs} s${seen ? ` (${seen} bid(s) seen, none open in ${denom})` : ''}`, { dseq });
  }

  private async lease(dseq: string, bid: Bid, signal: AbortSignal): Promise<void> {
    const manifest = this.manifests.get(dseq);
    if (manifest === undefined) throw deployFailure('akash', 'provider_error', `the manifest of Akash deployment ${dseq} is no longer known`, { dseq });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.api.createLease(manifest, bid.id, signal);
        this.manifests.delete(dseq);
        return;
      } catch (e) {
        // Refused by the lease guard: nothing was sent, and nothing is known of the bid.
        if (signal.aborted || e instanceof ProviderCallRefused) throw e;
        if (mayHaveHappened(e)) {
          // The lease may exist: look before trying again (never two leases).
          const dep = await this.api.getDeployment(dseq, signal);
          if (dep && currentLease(dep)) {
            this.manifests.delete(dseq);
            return;
          }
          if (attempt < this.createAttempts) {
            await sleep(this.config.akash.pollIntervalMs, signal);
            continue;
          }
        }
        await this.explainLeaseFailure(dseq, bid, e, signal);
        throw e;
      }
    }
  }

  /** A refused lease: a bid that went away, or no money, end the deployment with a clear reason. */
  private async explainLeaseFailure(dseq: string, bid: Bid, e: unknown, signal: AbortSignal): Promise<void> {
    const said = (e as { providerMessage?: string }).providerMessage ?? '';
    if (/insufficient (funds|balance)/i.test(said)) {
      await this.closeQuietly(dseq, 'insufficient funds', signal);
      throw deployFailure('akash', 'insufficient_funds', `Akash account has insufficient funds to lease deployment ${dseq}`, { dseq });
    }
    const bids = await this.api.listBids(dseq, signal).catch((x: unknown) => {
      // A refused look-up is not a withdrawn bid: this node lost the lease, it closes nothing.
      if (x instanceof ProviderCallRefused) throw x;
      return [] as Bid[];
    });
    const now = bids.find((b) => sameBid(b.id, bid.id));
    if (!now || now.state === 'lost' || now.state === 'closed') {
      await this.closeQuietly(dseq, 'bid lost', signal);
      throw deployFailure('akash', 'bid_lost', `the bid of Akash provider ${bid.id.provider} was ${now ? now.state : 'withdrawn'} before the lease was made`, { dseq });
    }
  }

  private async waitForReady(dseq: string, signal: AbortSignal, progress: (p: number, m: string) => void): Promise<{ uri: string; lease: AkashLease }> {
    const deadline = Date.now() + this.readyTimeoutMs;
    progress(70, 'the Akash provider is starting the agent');
    for (;;) {
      const dep = await this.api.getDeployment(dseq, signal);
      if (!dep || dep.deployment.state === 'closed') {
        throw deployFailure('akash', 'closed', `Akash deployment ${dseq} was closed before the agent became ready`, { dseq });
      }
      const lease = currentLease(dep);
      if (lease?.state === 'insufficient_funds') {
        await this.closeQuietly(dseq, 'insufficient funds', signal);
        throw deployFailure('akash', 'insufficient_funds', `Akash lease for deployment ${dseq} has insufficient funds (lease state insufficient_funds)`, { dseq });
      }
      if (lease?.state === 'closed') {
        throw deployFailure('akash', 'closed', `the Akash lease for deployment ${dseq} was closed by the provider`, { dseq });
      }
      const svc = lease ? serviceOf(lease) : undefined;
      const uri = svc?.uris?.[0];
      if (lease && svc && (svc.ready_replicas ?? 0) >= 1 && uri) return { uri, lease };
      if (Date.now() + this.config.akash.pollIntervalMs > deadline) break;
      await sleep(this.config.akash.pollIntervalMs, signal);
    }
    await this.closeQuietly(dseq, 'agent never ready', signal);
    throw deployFailure('akash', 'not_ready', `the agent on Akash deployment ${dseq} did not become ready within ${Math.round(this.readyTimeoutMs / 1000)} s`, { dseq });
  }

  /**
   * The agent's URL from the lease URI (a bare hostname, ingress-nginx on port 80). A provider
   * that put TLS in front of its ingress (a wildcard certificate on :443) serves the same host
   * over https: tried first, with certificate checks, and used when it answers /health.
   * (ingress-nginx always listens on 443, with its self-signed "Fake Certificate" when the
   * provider configured none: certificate checks are what tell the two apart.)
   */
  private async endpointFor(uri: string, signal?: AbortSignal): Promise<string> {
    const allowPrivate = this.config.allowPrivateEndpoints;
    const explicit = /^[a-z][a-z0-9+.-]*:\/\//i.test(uri);
    const plain = explicit ? uri : `http://${uri}`;
    await assertPublicEndpoint(plain, allowPrivate, 'akash');
    if (explicit) return uri;
    const https = `https://${uri}`;
    try {
      const res = await safeGet(`${https}/health`, { allowPrivate, timeoutMs: 5000, maxBytes: 4096, maxRedirects: 0, signal });
      if (res.status >= 200 && res.status < 300) return https;
    } catch (e) {
      if (signal?.aborted) throw e;
    }
    return plain;
  }

  /**
   * Releases a deployment that has failed for good; a failure here is logged, not raised. Not cut
   * by the deploy's abort, but under its lease guard: a node that lost the lease (paused past it)
   * closes nothing; the next owner resumes or releases the deployment (saved ref, else marker).
   */
  private async closeQuietly(dseq: string, why: string, signal: AbortSignal): Promise<void> {
    this.manifests.delete(dseq);
    try {
      await this.api.closeDeployment(dseq, guardOnly(signal));
      this.log.info({ dseq, why }, 'closed failed Akash deployment');
    } catch (e) {
      this.log.warn({ dseq, why, err: (e as Error).message }, 'could not close failed Akash deployment');
    }
  }

  async status(ref: ProviderRef, signal?: AbortSignal): Promise<ProviderStatus> {
    const { dseq } = pickRef(ref);
    if (!dseq) return { state: 'unknown', message: 'no Akash deployment recorded' };
    let dep: AkashDeployment | undefined;
    try {
      dep = await this.api.getDeployment(dseq, signal);
    } catch (e) {
      const err = toProviderError('akash', 'Akash', e, (t) => t, signal);
      return { state: 'unknown', message: err instanceof Error ? err.message : 'Akash status unavailable', details: { dseq } };
    }
    if (!dep) return { state: 'stopped', message: `Akash deployment ${dseq} not found`, details: { dseq } };
    const lease = currentLease(dep);
    const details = { dseq, deployment_state: dep.deployment.state, lease_state: lease?.state ?? null };
    if (dep.deployment.state === 'closed') return { state: 'stopped', message: `Akash deployment ${dseq} is closed`, details };
    if (lease?.state === 'insufficient_funds') return { state: 'failed', message: 'Akash lease ran out of funds', details };
    if (lease?.state === 'closed') return { state: 'failed', message: 'Akash lease was closed', details };
    if (!lease) return { state: 'deploying', message: 'no lease yet', details };
    const svc = serviceOf(lease);
    const uri = svc?.uris?.[0];
    if (svc && (svc.ready_replicas ?? 0) >= 1 && uri) {
      try {
        return { state: 'running', endpointUrl: await this.endpointFor(uri, signal), details };
      } catch (e) {
        if (signal?.aborted) throw e;
        return { state: 'failed', message: e instanceof Error ? e.message : 'endpoint refused', details };
      }
    }
    return { state: 'deploying', message: 'agent not ready yet', details };
  }

  async stop(ref: ProviderRef, signal?: AbortSignal): Promise<void> {
    const { dseq } = pickRef(ref);
    if (!dseq) return;
    this.manifests.delete(dseq);
    try {
      await this.api.closeDeployment(dseq, signal);
    } catch (e) {
      throw toProviderError('akash', 'Akash', e, (t) => t, signal);
    }
    this.log.info({ dseq }, 'Akash deployment closed');
  }

  health(endpointUrl: string, _ref: ProviderRef, signal?: AbortSignal): Promise<HealthReport> {
    return checkHealth(endpointUrl, Math.min(this.config.deploy.providerTimeoutMs, 10_000), signal, this.config.allowPrivateEndpoints);
  }
}

function pickRef(ref: ProviderRef | undefined): AkashRef {
  if (!ref) return {};
  const out: AkashRef = {};
  if (ref.dseq !== undefined && ref.dseq !== null && ref.dseq !== '') out.dseq = String(ref.dseq);
  if (typeof ref.gseq === 'number') out.gseq = ref.gseq;
  if (typeof ref.oseq === 'number') out.oseq = ref.oseq;
  if (typeof ref.provider === 'string') out.provider = ref.provider;
  return out;
}

/** The lease that matters: an active one if any, else the newest. */
function currentLease(dep: AkashDeployment): AkashLease | undefined {
  return dep.leases.find((l) => l.state === 'active') ?? dep.leases[dep.leases.length - 1];
}

function leaseIds(lease: AkashLease, ref: AkashRef): AkashRef {
  const id = lease.id;
  return id ? { gseq: id.gseq, oseq: id.oseq, provider: id.provider } : { gseq: ref.gseq, oseq: ref.oseq, provider: ref.provider };
}

function serviceOf(lease: AkashLease) {
  const services = lease.status?.services ?? {};
  return services[AKASH_SERVICE] ?? Object.values(services)[0];
}

function sameBid(a: BidId, b: BidId): boolean {
  return a.provider === b.provider && a.gseq === b.gseq && a.oseq === b.oseq;
}

/** The manifest a previous process saved with ctx.saveSecret, if it is well formed. */
function storedManifest(secret: string | undefined): CreatedDeployment | undefined {
  if (!secret) return undefined;
  try {
    const v = JSON.parse(secret) as Partial<CreatedDeployment>;
    return typeof v.dseq === 'string' && typeof v.manifest === 'string' ? { dseq: v.dseq, manifest: v.manifest } : undefined;
  } catch {
    return undefined;
  }
}

/** The deployment's on-chain version for a manifest: base64 of sha256 of its sorted JSON. */
function manifestHash(manifest: string): string {
  return createHash('sha256').update(manifest).digest('base64');
}
