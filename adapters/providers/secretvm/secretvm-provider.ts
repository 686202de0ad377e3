import type { Config } from '../../../src/config.js';
import type { Logger } from '../../../src/logger.js';
import type {
  DeployContext, DeployResult, DeploySpec, HealthReport, ProviderAdapter, ProviderRef, ProviderStatus,
} from '../../../src/providers/provider.js';
import { checkHealth, sleep, type RetryPolicy, type CallLimiter } from '../http-client.js';
import { assertPublicEndpoint } from '../endpoint-guard.js';
import { guardOnly } from '../provider-guard.js';
import {
  deployFailure, mayHaveHappened, progressReporter, resourceName, secretScrubber, toProviderError,
} from '../remote-deploy.js';
import { renderCompose, renderSecretsEnv } from './compose.js';
import { SecretVmApi, mapVmStatus, vmRouteId, type VmInstance } from './secretvm-api.js';

export interface SecretVmProviderOptions {
  retry?: Partial<RetryPolicy>;
  /** times a create is attempted when its answer is lost (default 3) */
  createAttempts?: number;
  /** the provider's call limiter (its p-queue) */
  limit?: CallLimiter;
}

interface SecretVmRef {
  vmId?: string;
  id?: string;
  name?: string;
}

/**
 * Runs an NFT's agent in a SecretVM confidential VM: create the VM from a compose file with the
 * model keys as its encrypted secrets, then wait until the VM runs and has a domain.
 */
export class SecretVmProvider implements ProviderAdapter {
  readonly name = 'secret_vm' as const;
  private readonly api: SecretVmApi;
  private readonly log: Logger;
  private readonly createAttempts: number;

  constructor(private readonly config: Config, log: Logger, opts: SecretVmProviderOptions = {}) {
    this.log = log.child({ provider: 'secret_vm' });
    this.api = new SecretVmApi(config.secretvm.apiUrl, () => config.secretvm.apiKey ?? '', config.deploy.providerTimeoutMs, this.log, opts.retry, opts.limit);
    this.createAttempts = opts.createAttempts ?? 3;
  }

  missingConfig(): string | undefined {
    if (!this.config.secretvm.apiKey) {
      return 'the secret_vm provider needs a SecretVM API key: set PANTHERS_SECRETVM_API_KEY (and PANTHERS_SECRETVM_API_URL for a portal other than secretai.scrtlabs.com)';
    }
    return undefined;
  }

  async deploy(spec: DeploySpec, ctx: DeployContext): Promise<DeployResult> {
    const missing = this.missingConfig();
    if (missing) throw deployFailure('secret_vm', 'not_configured', missing);
    const scrub = secretScrubber(spec.secrets);
    try {
      return await this.run(spec, ctx, progressReporter(ctx));
    } catch (e) {
      throw toProviderError('secret_vm', 'SecretVM', e, scrub, ctx.signal);
    }
  }

  private async run(spec: DeploySpec, ctx: DeployContext, progress: (p: number, m: string) => void): Promise<DeployResult> {
    const signal = ctx.signal;
    const name = resourceName(spec);
    let ref = pickRef(ctx.ref);
    let routeId = ref.vmId ?? ref.id;

    if (routeId) {
      const vm = await this.api.getVm(routeId, signal);
      if (!vm || mapVmStatus(vm) === 'stopped') {
        this.log.info({ deployment_id: spec.deploymentId, vm: routeId }, 'previous SecretVM is gone; creating a new one');
        routeId = undefined;
        ref = {};
      } else {
        progress(20, `resuming SecretVM ${name}`);
      }
    }
    if (!routeId) {
      const vm = await this.create(spec, name, signal);
      routeId = vmRouteId(vm)!;
      ref = { vmId: vm.vmId == null ? undefined : String(vm.vmId), id: vm.id == null ? undefined : String(vm.id), name };
      await ctx.saveRef(clean(ref));
      progress(20, `SecretVM ${name} created`);
      // Cancelled while the create was in flight: it settled and its ref is saved; the caller terminates it.
      signal.throwIfAborted();
    }

    const vm = await this.waitForRunning(routeId, signal, progress);
    const domain = vm.vmDomain!;
    try {
      await assertPublicEndpoint(`https://${domain}`, this.config.allowPrivateEndpoints, 'secret_vm');
    } catch (e) {
      await this.terminateQuietly(routeId, 'private endpoint', signal);
      throw e;
    }
    this.log.info({ deployment_id: spec.deploymentId, vm: routeId, domain }, 'SecretVM agent running');
    return {
      endpointUrl: `https://${domain}`,
      ref: clean(ref),
      details: {
        vm_id: routeId,
        vm_name: name,
        vm_domain: domain,
        raw_status: vm.status ?? vm.state ?? null,
        attestation_url: `https://${domain}:29343/cpu.html`,
      },
    };
  }

  /**
   * The create, made idempotent by the VM's deterministic name: a VM of that name is looked
   * for before creating and, when a create failed in a way where it may have gone through,
   * again before any retry. One VM per deployment, whatever the network does.
   */
  private async create(spec: DeploySpec, name: string, signal: AbortSignal): Promise<VmInstance> {
    const existing = await this.findByName(name, signal);
    if (existing) {
      this.log.info({ deployment_id: spec.deploymentId, vm: vmRouteId(existing) }, 'adopting the SecretVM already created for this deployment');
      return existing;
    }
    const input = {
      name,
      vmTypeId: this.config.secretvm.vmType,
      dockerCompose: renderCompose(spec, this.config.akash.image),
      secretsPlaintext: renderSecretsEnv(spec.secrets),
      environment: this.config.env === 'production' ? 'prod' as const : 'dev' as const,
      fsPersistence: true,
    };
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted();
      try {
        // Not aborted by a stop: an abandoned create can still make a VM that bills. It settles
        // (bounded by the HTTP timeout), its ref is saved, and then the stop terminates it. Under
        // the deploy's lease guard all the same: a node that lost the lease creates nothing.
        const vm = await this.api.createVm(input, guardOnly(signal));
        this.log.info({ deployment_id: spec.deploymentId, vm: vmRouteId(vm) }, 'SecretVM created');
        return vm;
      } catch (e) {
        if (!mayHaveHappened(e) || signal.aborted) throw e;
        const found = await this.findByName(name, signal);
        if (found) {
          this.log.warn({ deployment_id: spec.deploymentId, vm: vmRouteId(found) }, 'SecretVM create answer was lost but the VM exists; adopting it');
          return found;
        }
        if (attempt >= this.createAttempts) throw e;
        this.log.warn({ deployment_id: spec.deploymentId, attempt }, 'SecretVM create failed and no VM exists; retrying');
        await sleep(this.config.secretvm.pollIntervalMs, signal);
      }
    }
  }

  private async findByName(name: string, signal?: AbortSignal): Promise<VmInstance | undefined> {
    return (await this.findAllByName(name, signal))[0];
  }

  /** Live VMs carrying the name (GET /api/vm/instances lists nameFromUser, as secretvm-cli `vm list` shows it). */
  private async findAllByName(name: string, signal?: AbortSignal): Promise<VmInstance[]> {
    const vms = await this.api.listVms(signal);
    return vms.filter((vm) => (vm.nameFromUser === name || vm.name === name) && vmRouteId(vm) && mapVmStatus(vm) !== 'stopped');
  }

  async findCreated(spec: DeploySpec, signal?: AbortSignal): Promise<ProviderRef[]> {
    if (this.missingConfig()) return [];
    const vms = await this.findAllByName(resourceName(spec), signal);
    return vms.map((vm) => clean({ vmId: vm.vmId == null ? undefined : String(vm.vmId), id: vm.id == null ? undefined : String(vm.id), name: resourceName(spec) }));
  }

  private async waitForRunning(routeId: string, signal: AbortSignal, progress: (p: number, m: string) => void): Promise<VmInstance> {
    const { readyTimeoutMs, pollIntervalMs } = this.config.secretvm;
    const deadline = Date.now() + readyTimeoutMs;
    progress(40, 'waiting for the SecretVM to boot');
    let lastRaw = '';
    for (;;) {
      const vm = await this.api.getVm(routeId, signal);
      if (!vm) throw deployFailure('secret_vm', 'closed', `SecretVM ${routeId} disappeared while starting`, { vm_id: routeId });
      const raw = vm.status ?? vm.state ?? '';
      const state = mapVmStatus(vm);
      if (state === 'failed' || state === 'stopped') {
        await this.terminateQuietly(routeId, `VM ${state}`, signal);
        throw deployFailure('secret_vm', state === 'failed' ? 'provider_error' : 'closed', `SecretVM ${routeId} ${state === 'failed' ? 'failed to start' : 'stopped while starting'} (status: ${raw})`, { vm_id: routeId, raw_status: raw });
      }
      if (state === 'running' && vm.vmDomain) return vm;
      if (raw !== lastRaw && raw) {
        lastRaw = raw;
        progress(60, `SecretVM status: ${raw}`);
      }
      if (Date.now() + pollIntervalMs > deadline) break;
      await sleep(pollIntervalMs, signal);
    }
    await this.terminateQuietly(routeId, 'never ready', signal);
    throw deployFailure('secret_vm', 'not_ready', `SecretVM ${routeId} did not become ready within ${Math.round(readyTimeoutMs / 1000)} s (last status: ${lastRaw || 'none'})`, { vm_id: routeId });
  }

  /** Under the deploy's lease guard, not cut by its abort (closeQuietly in the Akash adapter). */
  private async terminateQuietly(routeId: string, why: string, signal: AbortSignal): Promise<void> {
    try {
      await this.api.terminateVm(routeId, guardOnly(signal));
      this.log.info({ vm: routeId, why }, 'terminated failed SecretVM');
    } catch (e) {
      this.log.warn({ vm: routeId, why, err: (e as Error).message }, 'could not terminate failed SecretVM');
    }
  }

  async status(ref: ProviderRef, signal?: AbortSignal): Promise<ProviderStatus> {
    const r = pickRef(ref);
    const routeId = r.vmId ?? r.id;
    if (!routeId) return { state: 'unknown', message: 'no SecretVM recorded' };
    let vm: VmInstance | undefined;
    try {
      vm = await this.api.getVm(routeId, signal);
    } catch (e) {
      const err = toProviderError('secret_vm', 'SecretVM', e, (t) => t, signal);
      return { state: 'unknown', message: err instanceof Error ? err.message : 'SecretVM status unavailable', details: { vm_id: routeId } };
    }
    if (!vm) return { state: 'stopped', message: `SecretVM ${routeId} not found`, details: { vm_id: routeId } };
    const raw = vm.status ?? vm.state ?? null;
    const details: Record<string, unknown> = { vm_id: routeId, raw_status: raw };
    if (vm.vmDomain) details.attestation_url = `https://${vm.vmDomain}:29343/cpu.html`;
    const state = mapVmStatus(vm);
    if (state === 'running' && vm.vmDomain) {
      try {
        await assertPublicEndpoint(`https://${vm.vmDomain}`, this.config.allowPrivateEndpoints, 'secret_vm');
      } catch (e) {
        return { state: 'failed', message: e instanceof Error ? e.message : 'endpoint refused', details };
      }
      return { state, endpointUrl: `https://${vm.vmDomain}`, details };
    }
    if (state === 'running') return { state: 'deploying', message: 'VM running, no domain yet', details };
    return { state, message: `SecretVM status: ${raw ?? 'none'}`, details };
  }

  async stop(ref: ProviderRef, signal?: AbortSignal): Promise<void> {
    const r = pickRef(ref);
    const routeId = r.vmId ?? r.id;
    if (!routeId) return;
    try {
      await this.api.terminateVm(routeId, signal);
    } catch (e) {
      throw toProviderError('secret_vm', 'SecretVM', e, (t) => t, signal);
    }
    this.log.info({ vm: routeId }, 'SecretVM terminated');
  }

  health(endpointUrl: string, _ref: ProviderRef, signal?: AbortSignal): Promise<HealthReport> {
    return checkHealth(endpointUrl, Math.min(this.config.deploy.providerTimeoutMs, 10_000), signal, this.config.allowPrivateEndpoints);
  }
}

function pickRef(ref: ProviderRef | undefined): SecretVmRef {
  const out: SecretVmRef = {};
  if (!ref) return out;
  if (ref.vmId !== undefined && ref.vmId !== null && ref.vmId !== '') out.vmId = String(ref.vmId);
  if (ref.id !== undefined && ref.id !== null && ref.id !== '') out.id = String(ref.id);
  if (typeof ref.name === 'string') out.name = ref.name;
  return out;
}

function clean(ref: SecretVmRef): ProviderRef {
  const out: ProviderRef = {};
  for (const [k, v] of Object.entries(ref)) if (v !== undefined && v !== null) out[k] = v;
  return out;
}
