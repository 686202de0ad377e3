import { randomUUID } from 'node:crypto';
import type { ActorKind, Behaviour, SelfRef, StopReason } from '../src/contracts/actor-kind.js';
import { DEPLOYMENT_ACTOR, type DeploymentMsg } from '../src/contracts/deployment-messages.js';
import { ApiError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { Publisher } from '../src/server/ws-server.js';
import {
  ACTIVE_STATUSES, type Deployment, type DeploymentEvent, type DeploymentStatus, type DeploymentsStore,
} from '../src/deployments/deployments-store.js';
import type { ProviderSecretsStore } from '../src/deployments/provider-secrets-store.js';
import { answerFenced, FencedError, fencedAsApiError, type Fence } from '../src/db/fence.js';
import type {
  DeployResult, DeploySpec, HealthReport, ProviderAdapter, ProviderName, ProviderRef,
} from '../src/providers/provider.js';
import { deploymentFrame, deploymentTopic } from '../src/deployments/deployment-frames.js';
import { guardProviderCalls, ProviderCallRefused } from '../adapters/providers/provider-guard.js';
import { deploymentView, type DeploymentView } from '../src/deployments/deployment-view.js';

export { DEPLOYMENT_ACTOR, type DeploymentMsg } from '../src/contracts/deployment-messages.js';

/** Where provider secrets (the Akash manifest) are kept between steps: src/deployments/provider-secrets-store.ts. */
export type SecretStore = ProviderSecretsStore;

export interface DeploymentActorDeps {
  repo: DeploymentsStore;
  /**
   * The fence of this node's lease on the NFT's shard, for every write this actor makes (cluster
   * mode; throws FencedError when the lease is not held now). Absent or undefined: one process,
   * no fencing (SQLite).
   */
  fenceFor?(nft: string): Fence | undefined;
  /**
   * Cluster mode: this node serves the NFT's shard now (holds it and is not handing it off).
   * Absent: always (one process).
   */
  serves?(nft: string): boolean;
  providers: Map<ProviderName, ProviderAdapter>;
  /** Runs a provider call under that provider's p-queue (bounded concurrency and rate). */
  run<T>(provider: ProviderName, call: () => Promise<T>): Promise<T>;
  publisher: Publisher;
  log: Logger;
  now(): number;
  healthIntervalMs: number;
  /** Builds what the provider needs to start the agent (env, secrets) for a deployment. */
  specFor(d: Deployment): DeploySpec;
  /** Longest a deploy may take before it is failed, per provider. */
  deployTimeoutMs(provider: ProviderName): number;
  secrets: SecretStore;
}

export { deploymentView, type DeploymentView } from '../src/deployments/deployment-view.js';

const TERMINAL: readonly DeploymentStatus[] = ['stopped', 'failed'];
/** A redeploy over a failed deployment waits this long at most for its resource to be released. */
const RELEASE_BEFORE_REDEPLOY_MS = 10_000;
/**
 * The ref a failed deployment keeps when releasing it failed and no ref was ever saved (a create
 * whose answer was lost): not a resource, a note that one may exist and must be looked up.
 */
const LOOKUP_OWED: ProviderRef = { lookup_owed: true };
/** Backoff of the retried release of a failed deployment's resource. */
const RELEASE_RETRY_BASE_MS = 15_000;
const RELEASE_RETRY_MAX_MS = 600_000;

/** Provider work of one NFT: it belongs to the NFT, not to one incarnation of its actor. */
interface Work {
  deploymentId: string;
  kind: 'deploy' | 'stop';
  controller: AbortController;
}

/**
 * One NFT's actor life on this node, shared by the incarnations a crash rebuilds: work started in
 * it reports to whichever incarnation runs now. Over once the actor is stopped for good
 * (passivated, evicted with its shard, shut down): the reports of its work then go nowhere, so
 * they cannot rebuild the actor on a node that no longer owns the NFT (cluster mode), where it
 * would keep a stale copy of the deployment and act on it when the shard comes back.
 */
interface Life {
  over: boolean;
}

/** What every incarnation of the NFT actors of one registry shares. */
interface Shared {
  works: Map<string, Work>;
  /** The live behaviour of each NFT, so provider work reports a saved ref to whichever one runs now. */
  live: Map<string, DeploymentBehaviour>;
  lives: Map<string, Life>;
}

/**
 * One NFT's deployment state machine: pending -> deploying -> running -> stopping -> stopped,
 * any -> failed, redeploy from stopped/failed. Provider work runs outside the mailbox (through the
 * provider's p-queue) and reports back as messages, so every state change is made here, in order,
 * written to SQLite and then published to the NFT's channel.
 *
 * Money rules: a stop during a create waits in `stopping` for the create to settle, then closes
 * what it made and anything else carrying the deployment's marker/name; a redeploy over a failed
 * deployment that holds a resource releases it first; a crash of this actor leaves provider work
 * running (the rebuilt actor picks it up) and resumes a deployment no work is driving.
 */
class DeploymentBehaviour implements Behaviour<DeploymentMsg, unknown> {
  private current: Deployment | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private healthInFlight = false;
  private releaseRetry: NodeJS.Timeout | undefined;
  private releaseAttempts = 0;
  /** Releases of a failed deployment's resource in flight (work outside the mailbox, like `work`). */
  private releasing = 0;
  private readonly life: Life;

  constructor(
    private readonly nft: string,
    private readonly self: SelfRef<DeploymentMsg>,
    private readonly deps: DeploymentActorDeps,
    private readonly shared: Shared,
    current: Deployment | undefined,
  ) {
    this.current = current;
    shared.live.set(nft, this);
    this.life = shared.lives.get(nft) ?? { over: false };
    shared.lives.set(nft, this.life);
    if (this.current?.status === 'running') this.startHealthChecks();
  }

  private get work(): Work | undefined {
    return this.shared.works.get(this.nft);
  }

  /**
   * Never passivated while provider work runs, nor, where the NFT is served, while its deployment
   * is mid-lifecycle or running (health checks). A shard being handed off is no longer served
   * here: with no work in flight the actor stops at once, and the new owner re-confirms what runs
   * (holding it until the drain's timeout kept the shard unserved that long).
   */
  busy(): boolean {
    return this.work !== undefined || this.releasing > 0 || (owesWork(this.current) && (this.deps.serves?.(this.nft) ?? true));
  }

  /**
   * Messages this actor sends itself from outside the mailbox (provider work, health checks)
   * reach the incarnation that runs then, or nobody once this actor's life is over.
   */
  private report(msg: DeploymentMsg): void {
    if (!this.life.over) this.self.tell(msg);
  }

  /** A handoff cuts nothing while no provider work is in flight: the next owner recovers the rest. */
  movable(): boolean {
    return this.work === undefined;
  }

  stopped(why?: StopReason): void {
    if (this.healthTimer) clearInterval(this.healthTimer);
    if (this.releaseRetry) clearTimeout(this.releaseRetry);
    this.healthTimer = undefined;
    if (this.shared.live.get(this.nft) === this) this.shared.live.delete(this.nft);
    if (why === 'crashed') {
      // Provider work goes on and reports to the rebuilt actor; what no work drives, it resumes.
      if (owesWork(this.current)) this.self.tell({ type: 'resume' });
      return;
    }
    this.life.over = true;
    if (this.shared.lives.get(this.nft) === this.life) this.shared.lives.delete(this.nft);
    this.work?.controller.abort();
    this.shared.works.delete(this.nft);
  }

  /** Provider work saved a ref for deployment `id` (already on disk): keep the copy in memory equal. */
  refSaved(id: string, ref: ProviderRef | null): void {
    if (this.current?.id === id) this.current.provider_ref = ref;
  }

  private get fence(): Fence | undefined {
    return this.deps.fenceFor?.(this.nft);
  }

  /**
   * Cluster mode: a fenced write before provider work that no new row records (recovery, a
   * release), so a node that lost the lease makes no provider call. Nothing to do on SQLite.
   */
  private async fencedTouch(d: Deployment): Promise<void> {
    const fence = this.fence;
    if (fence) await this.deps.repo.save(d, undefined, fence);
  }

  receive(msg: DeploymentMsg): unknown {
    return answerFenced(() => this.handle(msg));
  }

  private handle(msg: DeploymentMsg): unknown {
    switch (msg.type) {
      case 'deploy':
        return this.deploy(msg);
      case 'stop':
        return this.stop();
      case 'get':
        if (!this.current) throw new ApiError('NOT_FOUND', `NFT ${this.nft} has never been deployed`);
        return deploymentView(this.current);
      case 'recover':
        return this.recover(true);
      case 'resume':
        return this.recover(false);
      case 'step':
        return this.onStep(msg.id, msg.progress, msg.message);
      case 'deployed':
        return this.onDeployed(msg.id, msg.result);
      case 'deploy_failed':
        return this.onDeployFailed(msg.id, msg.message, msg.transient);
      case 'stopped':
        return this.onStopped(msg.id);
      case 'stop_failed':
        return this.onStopFailed(msg.id, msg.message);
      case 'released':
        return this.onReleased(msg.id);
      case 'release_failed':
        return this.onReleaseFailed(msg.id, msg.message);
      case 'health':
        return this.checkHealth();
      case 'health_result':
        return this.onHealth(msg.id, msg.report);
    }
  }

  private deploy(msg: Extract<DeploymentMsg, { type: 'deploy' }>): Promise<DeploymentView> {
    const cur = this.current;
    if (cur && ACTIVE_STATUSES.includes(cur.status)) {
      throw new ApiError('ALREADY_EXISTS', `NFT ${this.nft} already has a deployment that is ${cur.status}`, {
        deployment_id: cur.id, status: cur.status,
      });
    }
    if (cur?.status === 'failed' && cur.provider_ref) return this.releaseThenDeploy(cur, msg);
    return this.insertAndDeploy(msg);
  }

  /**
   * A failed deployment still holding a provider resource is released before anything new is
   * created: otherwise the new row would hide the old ref and the resource would bill forever.
   * The mailbox waits for it (bounded): nothing else of this NFT may happen in between.
   */
  private async releaseThenDeploy(cur: Deployment, msg: Extract<DeploymentMsg, { type: 'deploy' }>): Promise<DeploymentView> {
    await this.fencedTouch(cur);
    try {
      await this.release(cur, AbortSignal.timeout(Math.min(RELEASE_BEFORE_REDEPLOY_MS, this.deps.deployTimeoutMs(cur.provider))));
    } catch (e) {
      throw new ApiError('SERVICE_UNAVAILABLE', `The failed deployment ${cur.id} still holds a resource at ${cur.provider} that could not be released (${describe(e)}); nothing new was created, try again`, {
        deployment_id: cur.id, provider: cur.provider,
      });
    }
    await this.markReleased(cur, 'Released the provider resource the failed deployment held, before the redeploy');
    return this.insertAndDeploy(msg);
  }

  private async insertAndDeploy(msg: Extract<DeploymentMsg, { type: 'deploy' }>): Promise<DeploymentView> {
    const now = this.deps.now();
    const d: Deployment = {
      id: randomUUID(), nft_token_id: this.nft, wallet: msg.wallet.toLowerCase(), provider: msg.provider, status: 'pending',
      progress: 0, endpoint_url: null, resources: msg.resources, agent: msg.agent, provider_ref: null, details: null,
      error: null, health: null, created_at: now, updated_at: now,
    };
    // The store refuses a second live deployment (ALREADY_EXISTS) and, fenced, a node that lost
    // the lease. The provider call starts only after this row, which records it, has committed.
    const ev: DeploymentEvent = await this.deps.repo.insert(d, `Deployment queued on ${msg.provider}`, this.fence);
    this.current = d;
    this.publish(ev, d);
    this.runDeploy(d, undefined, false);
    return deploymentView(d);
  }

  private async stop(): Promise<DeploymentView> {
    const d = this.current;
    if (!d) throw new ApiError('NOT_FOUND', `NFT ${this.nft} has never been deployed`);
    if (d.status === 'stopped' || d.status === 'stopping') return deploymentView(d);
    if (d.status === 'failed' && !d.provider_ref) return deploymentView(d);
    const work = this.work;
    if (work?.kind === 'deploy') {
      // Never `stopped` while a create may still land: stopping until the provider call in
      // flight settles (onDeployFailed/onDeployed), then everything it created is closed.
      await this.transition(d, 'stopping', d.progress, 'Stopping: waiting for the provider call in flight, then closing what it created', {});
      work.controller.abort(new ApiError('CONFLICT', 'Deployment cancelled'));
      return deploymentView(d);
    }
    // Running, or failed with a resource left at the provider: release it.
    await this.transition(d, 'stopping', d.progress, 'Stopping the agent', {});
    this.runStop(d);
    return deploymentView(d);
  }

  /**
   * Restart recovery (`recover`, also re-confirms a running deployment) and resume after a crash
   * of this actor (`resume`): finish what was under way, without doing it twice. Without a saved
   * ref the adapter looks the resource up (marker/name) before creating.
   */
  private async recover(confirmRunning: boolean): Promise<DeploymentView | undefined> {
    const d = this.current;
    if (d?.status === 'failed' && d.provider_ref && !this.work) {
      await this.fencedTouch(d);
      this.releaseFailed(d);
    }
    if (!d || TERMINAL.includes(d.status) || this.work) return d && deploymentView(d);
    if (d.status === 'running' && !confirmRunning) return deploymentView(d);
    await this.fencedTouch(d);
    if (d.status === 'stopping') this.runStop(d);
    else this.runDeploy(d, d.provider_ref ?? undefined, true);
    return deploymentView(d);
  }

  private track(d: Deployment, kind: Work['kind']): Work {
    const work: Work = { deploymentId: d.id, kind, controller: new AbortController() };
    this.shared.works.set(this.nft, work);
    return work;
  }

  private untrack(work: Work): void {
    if (this.shared.works.get(this.nft) === work) this.shared.works.delete(this.nft);
  }

  private runDeploy(d: Deployment, ref: ProviderRef | undefined, resuming: boolean): void {
    const adapter = this.deps.providers.get(d.provider);
    const id = d.id;
    if (!adapter) {
      this.self.tell({ type: 'deploy_failed', id, message: `Provider ${d.provider} is not configured on this server` });
      return;
    }
    const work = this.track(d, 'deploy');
    this.guardCalls(work.controller.signal);
    const timeoutMs = this.deps.deployTimeoutMs(d.provider);
    const spec = this.deps.specFor(d);
    const { nft, deps, shared } = this;
    const fence = this.fence;
    this.deps.run(d.provider, async () => {
      if (work.controller.signal.aborted) throw new ApiError('CONFLICT', 'Deployment cancelled');
      const secret = resuming ? await deps.secrets.get(id) : undefined;
      this.report({ type: 'step', id, progress: 5, message: ref || resuming ? `Resuming deployment on ${d.provider}` : `Deploying to ${d.provider}` });
      const timer = setTimeout(() => work.controller.abort(new ApiError('TIMEOUT', `Deployment did not finish within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      try {
        return await adapter.deploy(spec, {
          signal: work.controller.signal,
          ref,
          resuming,
          secret,
          progress: (progress, message) => this.report({ type: 'step', id, progress, message }),
          // Written at once (SQLite: synchronously, before the provider call returns), so that a kill -9
          // right after a create still leaves the reference on disk and recovery resumes instead of
          // creating again. Through `shared`: after a crash of this actor the rebuilt one holds it.
          saveRef: (r) => {
            shared.live.get(nft)?.refSaved(id, r);
            return deps.repo.saveRef(nft, id, r, deps.now(), fence).catch((e: unknown) => {
              // Fenced: another node owns the NFT now; it finds the resource by marker/name and
              // drives it, so this node stops driving it. Otherwise (SQLITE_BUSY) not a reason to
              // fail the deploy: the copy in memory is written with the next transition.
              if (e instanceof FencedError) work.controller.abort(new ApiError('SERVICE_UNAVAILABLE', 'This node no longer owns the NFT'));
              deps.log.warn({ nft, deployment: id, err: describe(e) }, 'could not write the provider ref now');
            });
          },
          saveSecret: (v) =>
            deps.secrets.set(id, v, fence).catch((e: unknown) => {
              deps.log.warn({ nft, deployment: id, err: describe(e) }, 'could not write the provider secret now');
            }),
        });
      } finally {
        clearTimeout(timer);
      }
    }).then(
      (result) => {
        this.untrack(work);
        this.report({ type: 'deployed', id, result: result as DeployResult });
      },
      (e: unknown) => {
        this.untrack(work);
        const reason = work.controller.signal.reason;
        const err = reason instanceof ApiError ? reason : e;
        this.report({ type: 'deploy_failed', id, message: describe(err), transient: transientFailure(err) });
      },
    );
  }

  /**
   * Releases everything a deployment made at its provider: its saved ref, and whatever the
   * provider finds carrying its marker/name (a create whose answer was lost or came after a stop).
   */
  private async release(d: Deployment, signal: AbortSignal): Promise<void> {
    const adapter = this.deps.providers.get(d.provider);
    if (!adapter) return;
    this.guardCalls(signal);
    const refs: ProviderRef[] = d.provider_ref && !d.provider_ref.lookup_owed ? [d.provider_ref] : [];
    if (adapter.findCreated && !adapter.missingConfig()) {
      const spec = this.deps.specFor(d);
      for (const r of await this.deps.run(d.provider, () => adapter.findCreated!(spec, signal))) {
        if (!refs.some((x) => refKey(x) === refKey(r))) refs.push(r);
      }
    }
    for (const r of refs) await this.deps.run(d.provider, () => adapter.stop(r, signal));
    await this.deps.secrets.set(d.id, null, this.fence);
  }

  /**
   * Cluster mode: every provider HTTP call made under `signal` first checks that this node still
   * holds the NFT's lease at the epoch it started with, trusted on its own clock (a node paused
   * past its lease must not reach the provider from an overdue timer before it learns it lost it).
   */
  private guardCalls(signal: AbortSignal): void {
    const fenceFor = this.deps.fenceFor;
    if (!fenceFor) return;
    const nft = this.nft;
    let at: number | undefined;
    try {
      at = fenceFor(nft)?.epoch;
    } catch {
      at = undefined; // not held now: the guard refuses every call
    }
    guardProviderCalls(signal, () => {
      const f = fenceFor(nft);
      if (!f || (at !== undefined && f.epoch !== at)) throw new Error(`this node no longer holds the lease of NFT ${nft}`);
    });
  }

  private runStop(d: Deployment): void {
    const id = d.id;
    const work = this.track(d, 'stop');
    this.release(d, AbortSignal.any([work.controller.signal, AbortSignal.timeout(this.deps.deployTimeoutMs(d.provider))])).then(
      () => {
        this.untrack(work);
        this.report({ type: 'stopped', id });
      },
      (e: unknown) => {
        this.untrack(work);
        this.report({ type: 'stop_failed', id, message: describe(e) });
      },
    );
  }

  /** The deployment no longer holds anything at its provider: its ref is cleared (on disk and here). */
  private async markReleased(d: Deployment, message: string): Promise<void> {
    await this.deps.repo.saveRef(this.nft, d.id, null, this.deps.now(), this.fence);
    d.provider_ref = null;
    if (this.current?.id === d.id) await this.transition(d, d.status, d.progress, message, {});
  }

  private async onStep(id: string, progress: number, message: string): Promise<void> {
    const d = this.current;
    if (!d || d.id !== id || (d.status !== 'pending' && d.status !== 'deploying')) return;
    await this.transition(d, 'deploying', Math.min(99, progress), message, {});
  }

  private async onDeployed(id: string, result: DeployResult): Promise<void> {
    const d = this.current;
    if (!d || d.id !== id) return;
    if (d.status === 'running') {
      // Recovery of a running deployment confirmed it still serves.
      const next = { ...d, endpoint_url: result.endpointUrl, details: result.details ?? d.details, updated_at: this.deps.now() };
      await this.deps.repo.save(next, undefined, this.fence);
      Object.assign(d, { endpoint_url: next.endpoint_url, details: next.details, updated_at: next.updated_at });
      // Cluster mode: this node took the NFT over. The previous owner may have committed
      // `running` and died before its frame left for NATS (frames go out at the end of the
      // event-loop turn): subscribers on other nodes would never see it. Announce it again (no
      // new event row; a subscriber that saw it already gets the same status twice).
      if (this.fence) {
        this.deps.publisher.publish(deploymentTopic(this.nft), deploymentFrame({
          id: 0, deployment_id: d.id, nft_token_id: this.nft, status: 'running', progress: d.progress,
          message: `Agent running at ${d.endpoint_url}`, created_at: d.updated_at,
        }, d.endpoint_url));
      }
      this.startHealthChecks();
      return;
    }
    if (d.status === 'stopping') {
      // Stopped while the provider was still creating it: close what was created.
      await this.deps.repo.saveRef(this.nft, id, result.ref, this.deps.now(), this.fence);
      d.provider_ref = result.ref;
      if (this.work?.kind !== 'stop') this.runStop(d);
      return;
    }
    if (d.status !== 'pending' && d.status !== 'deploying') {
      // Ended while the provider was still creating it (cannot normally happen): release it.
      const adapter = this.deps.providers.get(d.provider);
      const signal = AbortSignal.timeout(this.deps.deployTimeoutMs(d.provider));
      this.guardCalls(signal);
      if (adapter) this.deps.run(d.provider, () => adapter.stop(result.ref, signal)).catch(() => undefined);
      return;
    }
    await this.transition(d, 'running', 100, `Agent running at ${result.endpointUrl}`, {
      provider_ref: result.ref, endpoint_url: result.endpointUrl, details: result.details ?? null, error: null,
    });
    this.startHealthChecks();
  }

  private async onDeployFailed(id: string, message: string, transient = false): Promise<void> {
    const d = this.current;
    if (!d || d.id !== id) return;
    if (d.status === 'running' && transient) {
      // The re-check of a running deployment after a restart or a takeover did not get through
      // (a ping that timed out under load, a provider busy for a moment): that is not the agent
      // gone. Failing it here released a serving agent. It stays running with what was seen as
      // its health, and the health checks go on, as for any running agent that stops answering.
      this.deps.log.warn({ nft: this.nft, deployment: id, err: message }, 'the re-check of a running deployment did not get through; it stays running');
      await this.onHealth(id, { ok: false, latency_ms: 0, message: `Re-check after a restart or takeover: ${message}` });
      this.startHealthChecks();
      return;
    }
    if (d.status === 'stopping') {
      // The create the stop waited for has settled: now close what it made (ref saved meanwhile).
      if (this.work?.kind !== 'stop') this.runStop(d);
      return;
    }
    if (TERMINAL.includes(d.status)) return;
    await this.transition(d, 'failed', d.progress, `Deployment failed: ${message}`, { error: message });
    this.stopHealthChecks();
    this.releaseFailed(d);
  }

  /** Releases whatever the provider may have created for a failed deployment (in the background). */
  private releaseFailed(d: Deployment): void {
    const adapter = this.deps.providers.get(d.provider);
    if (!adapter || adapter.missingConfig()) return;
    const id = d.id;
    this.releasing++;
    this.release(d, AbortSignal.timeout(this.deps.deployTimeoutMs(d.provider))).finally(() => this.releasing--).then(
      () => this.report({ type: 'released', id }),
      (e: unknown) => this.report({ type: 'release_failed', id, message: describe(e) }),
    );
  }

  private async onReleased(id: string): Promise<void> {
    const d = this.current;
    this.releaseAttempts = 0;
    if (d?.id === id && d.status === 'failed') {
      if (d.provider_ref) await this.markReleased(d, 'Released what the provider had created');
      return;
    }
    // No longer the current deployment (a redeploy released it too): just clear its ref.
    if (d?.id !== id) await this.deps.repo.saveRef(this.nft, id, null, this.deps.now(), this.fence);
  }

  private async onReleaseFailed(id: string, message: string): Promise<void> {
    const d = this.current;
    this.deps.log.warn({ nft: this.nft, deployment: id, err: message }, 'releasing a failed deployment failed');
    if (d?.id !== id || d.status !== 'failed') return;
    await this.oweRelease(d);
  }

  /**
   * Something may still bill: the row keeps its ref (or a note that a look-up is owed), and the
   * release is retried with backoff while this process runs; after a restart, recovery retries it.
   * DELETE or a redeploy releases it too.
   */
  private async oweRelease(d: Deployment): Promise<void> {
    if (!d.provider_ref) {
      await this.deps.repo.saveRef(this.nft, d.id, LOOKUP_OWED, this.deps.now(), this.fence);
      d.provider_ref = LOOKUP_OWED;
    }
    if (this.releaseRetry) clearTimeout(this.releaseRetry);
    const delay = Math.min(RELEASE_RETRY_BASE_MS * 2 ** this.releaseAttempts++, RELEASE_RETRY_MAX_MS);
    this.releaseRetry = setTimeout(() => {
      this.releaseRetry = undefined;
      this.report({ type: 'resume' });
    }, delay);
    this.releaseRetry.unref();
  }

  private async onStopped(id: string): Promise<void> {
    const d = this.current;
    if (!d || d.id !== id || d.status !== 'stopping') return;
    this.stopHealthChecks();
    await this.transition(d, 'stopped', d.progress, 'Deployment stopped', { health: null });
  }

  private async onStopFailed(id: string, message: string): Promise<void> {
    const d = this.current;
    if (!d || d.id !== id || d.status !== 'stopping') return;
    this.stopHealthChecks();
    await this.transition(d, 'failed', d.progress, `Stopping failed: ${message}; retried in the background, or DELETE again`, { error: `stop failed: ${message}` });
    await this.oweRelease(d);
  }

  private startHealthChecks(): void {
    if (this.healthTimer) return;
    this.healthTimer = setInterval(() => this.report({ type: 'health' }), this.deps.healthIntervalMs);
    this.healthTimer.unref();
    this.report({ type: 'health' });
  }

  private stopHealthChecks(): void {
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.healthTimer = undefined;
  }

  private checkHealth(): void {
    const d = this.current;
    if (!d || d.status !== 'running' || !d.endpoint_url || this.healthInFlight) return;
    const adapter = this.deps.providers.get(d.provider);
    if (!adapter) return;
    this.healthInFlight = true;
    const id = d.id;
    const started = performance.now();
    adapter.health(d.endpoint_url, d.provider_ref ?? {}, AbortSignal.timeout(10_000)).then(
      (report) => this.report({ type: 'health_result', id, report }),
      (e: unknown) => this.report({ type: 'health_result', id, report: { ok: false, latency_ms: Math.round(performance.now() - started), message: describe(e) } }),
    );
  }

  private async onHealth(id: string, report: HealthReport): Promise<void> {
    this.healthInFlight = false;
    const d = this.current;
    if (!d || d.id !== id || d.status !== 'running') return;
    const next = { ...d, health: { ...report, checked_at: new Date(this.deps.now()).toISOString() }, updated_at: this.deps.now() };
    await this.deps.repo.save(next, undefined, this.fence);
    d.health = next.health;
    d.updated_at = next.updated_at;
  }

  /**
   * Writes the next state and its event, then (committed) takes it in memory and publishes it. A
   * failed write (fenced, disk) throws: the actor is rebuilt from the store. The provider ref is
   * taken back only when the patch sets it: provider work may save a newer one meanwhile.
   */
  private async transition(d: Deployment, status: DeploymentStatus, progress: number, message: string, patch: Partial<Deployment>): Promise<void> {
    // Progress never goes back within a deployment.
    const next: Deployment = { ...d, ...patch, status, progress: Math.max(d.progress, Math.round(progress)), updated_at: this.deps.now() };
    const ev = (await this.deps.repo.save(next, message, this.fence))!;
    Object.assign(d, next, 'provider_ref' in patch ? {} : { provider_ref: d.provider_ref });
    this.publish(ev, d);
  }

  private publish(ev: DeploymentEvent, d: Deployment): void {
    this.deps.publisher.publish(deploymentTopic(this.nft), deploymentFrame(ev, d.endpoint_url));
  }
}

function describe(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.name === 'AbortError' || e.name === 'TimeoutError' ? 'the provider did not answer in time' : e.message;
  return String(e);
}

/**
 * Mid-lifecycle, or failed while still holding a provider ref (a release to retry): such an actor
 * is never passivated, and after a crash it resumes.
 */
function owesWork(d: Deployment | undefined): boolean {
  return d !== undefined && (!TERMINAL.includes(d.status) || (d.status === 'failed' && d.provider_ref !== null));
}

/** Identity of a provider resource across ref shapes (a saved Akash ref has lease ids, a found one only the dseq). */
function refKey(r: ProviderRef): string {
  return String(r.dseq ?? r.vmId ?? r.id ?? JSON.stringify(r));
}

/**
 * Cluster mode: an NFT's actor runs only on the owner of its shard. Built anywhere else (a late
 * message reaching this registry after the shard moved), it would hold a copy of the deployment
 * that nobody keeps current and act on it if the shard came back: refused as not_owner instead.
 */
function ownedHere(deps: DeploymentActorDeps, nft: string): void {
  try {
    deps.fenceFor?.(nft);
  } catch (e) {
    throw fencedAsApiError(e);
  }
}

export function deploymentActorKind(deps: DeploymentActorDeps): ActorKind<DeploymentMsg, unknown> {
  const shared: Shared = { works: new Map(), live: new Map(), lives: new Map() };
  return {
    name: DEPLOYMENT_ACTOR,
    create: (nft, self) => {
      if (deps.fenceFor) {
        ownedHere(deps, nft);
        // SQLite (and a warm cache) answers at once; cluster mode reads the row afresh: this node
        // may have just taken the NFT over, and its cache only knew another owner's writes.
        deps.repo.forget(nft);
      }
      const cached = deps.repo.peekLatest(nft);
      if (cached !== undefined) return new DeploymentBehaviour(nft, self, deps, shared, cached ?? undefined);
      return deps.repo.latest(nft).then((d) => {
        ownedHere(deps, nft); // the shard may have gone while the row was read
        return new DeploymentBehaviour(nft, self, deps, shared, d);
      });
    },
  };
}

/**
 * A deploy failure that says nothing about the resource being gone: the re-check of a running
 * deployment that ends so leaves it running (onDeployFailed). Reasons from remote-deploy.ts.
 */
function transientFailure(e: unknown): boolean {
  if (e instanceof ProviderCallRefused) return true;
  if (!(e instanceof ApiError)) return false;
  if (e.code === 'TIMEOUT') return true;
  const reason = e.details.reason;
  // provider_error with a raw status is a VM the provider reports failed; without, a 5xx.
  return reason === 'timeout' || reason === 'unreachable' || reason === 'rate_limited' || reason === 'not_ready' || (reason === 'provider_error' && e.details.raw_status === undefined);
}
