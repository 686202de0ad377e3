import { ApiError } from '../../src/errors.js';
import type { AgentHost } from '../../src/agents/agent-host.js';
import type {
  DeployContext, DeployResult, DeploySpec, HealthReport, ProviderAdapter, ProviderRef, ProviderStatus,
} from '../../src/providers/provider.js';

/**
 * The `local` provider: the agent runs inside this process as the NFT's AgentActor, served on the
 * same port by Host name (agent-{nft}.<public host>) and by path (/v1/agents/{nft}/...).
 * Nothing leaves the machine, so a deploy takes milliseconds.
 */
export class LocalProvider implements ProviderAdapter {
  readonly name = 'local' as const;

  constructor(private readonly host: AgentHost) {}

  missingConfig(): string | undefined {
    return undefined;
  }

  async deploy(spec: DeploySpec, ctx: DeployContext): Promise<DeployResult> {
    const ref: ProviderRef = { nft: spec.nftTokenId, deployment_id: spec.deploymentId };
    await ctx.saveRef(ref);
    ctx.progress(30, 'Starting the embedded agent');
    await this.host.mount(spec.nftTokenId, spec.agent);
    if (ctx.signal.aborted) {
      this.host.unmount(spec.nftTokenId);
      throw new ApiError('CONFLICT', 'Deployment cancelled');
    }
    ctx.progress(70, 'Checking the agent answers');
    await this.host.ping(spec.nftTokenId);
    return { endpointUrl: this.host.endpointUrl(spec.nftTokenId), ref, details: { embedded: true } };
  }

  async status(ref: ProviderRef): Promise<ProviderStatus> {
    const nft = String(ref.nft);
    return this.host.isMounted(nft)
      ? { state: 'running', endpointUrl: this.host.endpointUrl(nft) }
      : { state: 'stopped', message: 'The embedded agent is not mounted' };
  }

  async stop(ref: ProviderRef): Promise<void> {
    this.host.unmount(String(ref.nft));
  }

  async health(_url: string, ref: ProviderRef): Promise<HealthReport> {
    const nft = String(ref.nft);
    const started = performance.now();
    if (!this.host.isMounted(nft)) return { ok: false, latency_ms: 0, message: 'The embedded agent is not mounted' };
    try {
      await this.host.ping(nft);
      return { ok: true, latency_ms: Math.round((performance.now() - started) * 100) / 100, message: 'ok' };
    } catch (e) {
      return { ok: false, latency_ms: Math.round(performance.now() - started), message: e instanceof Error ? e.message : String(e) };
    }
  }
}
