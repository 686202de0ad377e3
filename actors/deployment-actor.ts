import { randomUUID } from 'node:crypto';
import type { ActorKind, Behaviour, SelfRef } from './registry.js';
import { ApiError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { Publisher } from '../src/server/ws-server.js';
import {
  ACTIVE_STATUSES, type Deployment, type DeploymentEvent, type DeploymentStatus, type DeploymentsRepo,
} from '../src/deployments/deployments-repo.js';
import type {
  AgentSettings, DeployResult, DeploySpec, HealthReport, ProviderAdapter, ProviderName, ProviderRef, Resources,
} from '../src/providers/provider.js';
import { deploymentFrame, deploymentTopic } from '../src/deployments/deployment-frames.js';
import { deploymentView, type DeploymentView } from '../src/deployments/deployment-view.js';

export const DEPLOYMENT_ACTOR = 'deployment';

export type DeploymentMsg =
  | { type: 'deploy'; wallet: string; provider: ProviderName; resources: Resources; agent: AgentSettings }
  | { type: 'stop' }
  | { type: 'get' }
  | { type: 'recover' }
  | { type: 'step'; id: string; progress: number; message: string }
  | { type: 'deployed'; id: string; result: DeployResult }
  | { type: 'deploy_failed'; id: string; message: string }
  | { type: 'stopped'; id: string }
  | { type: 'stop_failed'; id: string; message: string }
  | { type: 'health' }
  | { type: 'health_result'; id: string; report: HealthReport };

export interface DeploymentActorDeps {
  repo: DeploymentsRepo;
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
}

export { deploymentView, type DeploymentView } from '../src/deployments/deployment-view.js';

const TERMINAL: readonly DeploymentStatus[] = ['stopped', 'failed'];

/**
 * One NFT's deployment state machine: pending -> deploying -> running -> stopping -> stopped,
 * any -> failed, redeploy from stopped/failed. Provider work runs outside the mailbox (through the
 * provider's p-queue) and reports back as messages, so every state change is made here, in order,
 * written to SQLite and then published to the NFT's channel.
 */
class DeploymentBehaviour implements Behaviour<DeploymentMsg, unknown> {
  private current: Deployment | undefined;
  private work: AbortController | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private healthInFlight = false;

  constructor(private readonly nft: string, private readonly self: SelfRef<DeploymentMsg>, private readonly deps: DeploymentActorDeps) {
    this.current = deps.repo.latestForNft(nft);
    if (this.current?.status === 'running') this.startHealthChecks();
  }

  busy(): boolean {
    return this.work !== undefined || (this.current !== undefined && !TERMINAL.includes(this.current.status));
  }

  stopped(): void {
    this.work?.abort();
    if (this.healthTimer) clearInterval(this.healthTimer);
  }

  receive(msg: DeploymentMsg): unknown {
    switch (msg.type) {
      case 'deploy':
        return this.deploy(msg);
      case 'stop':
        return this.stop();
      case 'get':
        if (!this.current) throw new ApiError('NOT_FOUND', `NFT ${this.nft} has never been deployed`);
        return deploymentView(this.current);
      case 'recover':
        return this.recover();
      case 'step':
        return this.onStep(msg.id, msg.progress, msg.message);
      case 'deployed':
        return this.onDeployed(msg.id, msg.result);
      case 'deploy_failed':
        return this.onDeployFailed(msg.id, msg.message);
      case 'stopped':
        return this.onStopped(msg.id);
      case 'stop_failed':
        return this.onStopFailed(msg.id, msg.message);
      case 'health':
        return this.checkHealth();
      case 'health_result':
        return this.onHealth(msg.id, msg.report);
    }
  }

  private deploy(msg: Extract<DeploymentMsg, { type: 'deploy' }>): DeploymentView {
    const cur = this.current;
    if (cur && ACTIVE_STATUSES.includes(cur.status)) {
      throw new ApiError('ALREADY_EXISTS', `NFT ${this.nft} already has a deployment that is ${cur.status}`, {
        deployment_id: cur.id, status: cur.status,
      });
    }
    const now = this.deps.now();
    const d: Deployment = {
      id: randomUUID(), nft_token_id: this.nft, wallet: msg.wallet.toLowerCase(), provider: msg.provider, status: 'pending',
      progress: 0, endpoint_url: null, resources: msg.resources, agent: msg.agent, provider_ref: null, details: null,
      error: null, health: null, created_at: now, updated_at: now,
    };
    let ev: DeploymentEvent;
    try {
      ev = this.deps.repo.insert(d, `Deployment queued on ${msg.provider}`);
    } catch (e) {
      // The partial unique index is the last word on "one active deployment per NFT".
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new ApiError('ALREADY_EXISTS', `NFT ${this.nft} already has an active deployment`);
      throw e;
    }
    this.current = d;
    this.publish(ev, d);
    this.runDeploy(d, undefined);
    return deploymentView(d);
  }

  private stop(): DeploymentView {
    const d = this.current;
    if (!d) throw new ApiError('NOT_FOUND', `NFT ${this.nft} has never been deployed`);
    if (d.status === 'stopped' || d.status === 'stopping') return deploymentView(d);
    if (d.status === 'failed' && !d.provider_ref) return deploymentView(d);
    // Anything else (running, mid-deploy, or failed with a resource left at the provider): release it.
    this.work?.abort();
    this.work = undefined;
    this.transition(d, 'stopping', d.progress, 'Stopping the agent', {});
    this.runStop(d);
    return deploymentView(d);
  }

  /** Restart recovery: finish what the process was doing when it died, without doing it twice. */
  private recover(): DeploymentView | undefined {
    const d = this.current;
    if (!d || TERMINAL.includes(d.status) || this.work) return d && deploymentView(d);
    if (d.status === 'stopping') this.runStop(d);
    else this.runDeploy(d, d.provider_ref ?? undefined);
    return deploymentView(d);
  }

  private runDeploy(d: Deployment, ref: ProviderRef | undefined): void {
    const adapter = this.deps.providers.get(d.provider);
    const id = d.id;
    if (!adapter) {
      this.self.tell({ type: 'deploy_failed', id, message: `Provider ${d.provider} is not configured on this server` });
      return;
    }
    const work = new AbortController();
    this.work = work;
    const timeoutMs = this.deps.deployTimeoutMs(d.provider);
    const spec = this.deps.specFor(d);
    this.deps.run(d.provider, async () => {
      if (work.signal.aborted) throw new ApiError('CONFLICT', 'Deployment cancelled');
      this.self.tell({ type: 'step', id, progress: 5, message: ref ? `Resuming deployment on ${d.provider}` : `Deploying to ${d.provider}` });
      const timer = setTimeout(() => work.abort(new ApiError('TIMEOUT', `Deployment did not finish within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      try {
        return await adapter.deploy(spec, {
          signal: work.signal,
          ref,
          progress: (progress, message) => this.self.tell({ type: 'step', id, progress, message }),
          // Written synchronously, before the provider call returns, so that a kill -9 right after a
          // create still leaves the reference on disk and recovery resumes instead of creating again.
          saveRef: (r) => this.saveRef(id, r),
        });
      } finally {
        clearTimeout(timer);
      }
    }).then(
      (result) => this.self.tell({ type: 'deployed', id, result: result as DeployResult }),
      (e: unknown) => {
        const reason = work.signal.reason;
        const err = reason instanceof ApiError ? reason : e;
        this.self.tell({ type: 'deploy_failed', id, message: describe(err) });
      },
    );
  }

  private runStop(d: Deployment): void {
    const adapter = this.deps.providers.get(d.provider);
    const id = d.id;
    const ref = d.provider_ref;
    if (!adapter || !ref) {
      this.self.tell({ type: 'stopped', id });
      return;
    }
    this.deps.run(d.provider, () => adapter.stop(ref, AbortSignal.timeout(this.deps.deployTimeoutMs(d.provider)))).then(
      () => this.self.tell({ type: 'stopped', id }),
      (e: unknown) => this.self.tell({ type: 'stop_failed', id, message: describe(e) }),
    );
  }

  private saveRef(id: string, ref: ProviderRef): void {
    const d = this.current;
    if (!d || d.id !== id) return;
    d.provider_ref = ref;
    d.updated_at = this.deps.now();
    this.deps.repo.save(d);
  }

  private onStep(id: string, progress: number, message: string): void {
    const d = this.current;
    if (!d || d.id !== id || (d.status !== 'pending' && d.status !== 'deploying')) return;
    this.transition(d, 'deploying', Math.min(99, progress), message, {});
  }

  private onDeployed(id: string, result: DeployResult): void {
    const d = this.current;
    if (!d || d.id !== id) return;
    this.work = undefined;
    if (d.status === 'running') {
      // Recovery of a running deployment confirmed it still serves.
      d.endpoint_url = result.endpointUrl;
      d.details = result.details ?? d.details;
      d.updated_at = this.deps.now();
      this.deps.repo.save(d);
      this.startHealthChecks();
      return;
    }
    if (d.status !== 'pending' && d.status !== 'deploying') {
      // Stopped while the provider was still creating it: release what was created.
      const adapter = this.deps.providers.get(d.provider);
      if (adapter) this.deps.run(d.provider, () => adapter.stop(result.ref)).catch(() => undefined);
      return;
    }
    d.provider_ref = result.ref;
    this.transition(d, 'running', 100, `Agent running at ${result.endpointUrl}`, {
      endpoint_url: result.endpointUrl, details: result.details ?? null, error: null,
    });
    this.startHealthChecks();
  }

  private onDeployFailed(id: string, message: string): void {
    const d = this.current;
    if (!d || d.id !== id) return;
    this.work = undefined;
    if (d.status === 'stopping' || TERMINAL.includes(d.status)) return;
    this.transition(d, 'failed', d.progress, `Deployment failed: ${message}`, { error: message });
    this.stopHealthChecks();
    // Release whatever the provider may have created before the failure (best effort).
    const adapter = this.deps.providers.get(d.provider);
    if (adapter && d.provider_ref) {
      const ref = d.provider_ref;
      this.deps.run(d.provider, () => adapter.stop(ref)).catch((e: unknown) =>
        this.deps.log.warn({ nft: this.nft, deployment: id, err: describe(e) }, 'releasing a failed deployment failed'));
    }
  }

  private onStopped(id: string): void {
    const d = this.current;
    if (!d || d.id !== id || d.status !== 'stopping') return;
    this.stopHealthChecks();
    this.transition(d, 'stopped', d.progress, 'Deployment stopped', { health: null });
  }

  private onStopFailed(id: string, message: string): void {
    const d = this.current;
    if (!d || d.id !== id || d.status !== 'stopping') return;
    this.stopHealthChecks();
    this.transition(d, 'failed', d.progress, `Stopping failed: ${message}; DELETE again to retry`, { error: `stop failed: ${message}` });
  }

  private startHealthChecks(): void {
    if (this.healthTimer) return;
    this.healthTimer = setInterval(() => this.self.tell({ type: 'health' }), this.deps.healthIntervalMs);
    this.healthTimer.unref();
    this.self.tell({ type: 'health' });
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
      (report) => this.self.tell({ type: 'health_result', id, report }),
      (e: unknown) => this.self.tell({ type: 'health_result', id, report: { ok: false, latency_ms: Math.round(performance.now() - started), message: describe(e) } }),
    );
  }

  private onHealth(id: string, report: HealthReport): void {
    this.healthInFlight = false;
    const d = this.current;
    if (!d || d.id !== id || d.status !== 'running') return;
    d.health = { ...report, checked_at: new Date(this.deps.now()).toISOString() };
    d.updated_at = this.deps.now();
    this.deps.repo.save(d);
  }

  private transition(d: Deployment, status: DeploymentStatus, progress: number, message: string, patch: Partial<Deployment>): void {
    Object.assign(d, patch);
    d.status = status;
    // Progress never goes back within a deployment.
    d.progress = Math.max(d.progress, Math.round(progress));
    d.updated_at = this.deps.now();
    const ev = this.deps.repo.save(d, message)!;
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

export function deploymentActorKind(deps: DeploymentActorDeps): ActorKind<DeploymentMsg, unknown> {
  return {
    name: DEPLOYMENT_ACTOR,
    create: (nft, self) => new DeploymentBehaviour(nft, self, deps),
  };
}
