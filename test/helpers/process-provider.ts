import { spawnCli, tempDir, type ServerProcess } from './server.js';
import type {
  DeployContext, DeployResult, DeploySpec, HealthReport, ProviderAdapter, ProviderName, ProviderRef, ProviderStatus,
} from '../../src/providers/provider.js';

/**
 * Load shedding is not what these tests are about: on a loaded 2-core machine a 500 ms event-loop
 * lag is reached by the test process itself, and the servers would answer 503 "overloaded".
 */
export const LAG_LIMIT = '60000';

/**
 * A remote provider reduced to what matters for identity tests: deploy starts the real
 * `panthers agent` process from exactly the env and secrets the orchestrator's deploy spec holds
 * (as a container would get them), on 127.0.0.1 with an ephemeral port, and reports its URL as
 * the endpoint. Stop ends the process. (The provider-faithful fakes, with their APIs, SDL and
 * ingress proxies, are test/fakes/*; this one exists so token and sign-in tests run the real agent
 * without depending on a provider's protocol.)
 */
export class ProcessProvider implements ProviderAdapter {
  /** by deployment id: the process, the env it was started with (env + secrets), and the spec */
  readonly agents = new Map<string, { proc: ServerProcess; env: Record<string, string>; spec: DeploySpec }>();

  constructor(readonly name: ProviderName = 'akash', private readonly overrides: Record<string, string> = {}) {}

  missingConfig(): string | undefined {
    return undefined;
  }

  async deploy(spec: DeploySpec, ctx: DeployContext): Promise<DeployResult> {
    ctx.progress(20, 'Starting the agent process');
    const env: Record<string, string> = {
      ...spec.env, ...spec.secrets,
      PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: tempDir('panthers-remote-agent-'), PANTHERS_RATE_LIMITS: 'off',
      // Not the orchestrator's own (inherited when it runs from a shell that set it).
      PANTHERS_PUBLIC_URL: '',
      PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_LIMIT,
      ...this.overrides,
    };
    const proc = await spawnCli(['agent'], env);
    this.agents.set(spec.deploymentId, { proc, env, spec });
    const ref: ProviderRef = { deployment_id: spec.deploymentId, port: proc.port };
    ctx.saveRef(ref);
    return { endpointUrl: proc.url, ref };
  }

  async status(ref: ProviderRef): Promise<ProviderStatus> {
    const a = this.agents.get(String(ref.deployment_id));
    return a && a.proc.child.exitCode === null ? { state: 'running', endpointUrl: a.proc.url } : { state: 'stopped' };
  }

  async stop(ref: ProviderRef): Promise<void> {
    const a = this.agents.get(String(ref.deployment_id));
    if (!a) return;
    this.agents.delete(String(ref.deployment_id));
    if (a.proc.child.exitCode === null) {
      a.proc.child.kill('SIGTERM');
      await a.proc.exited;
    }
  }

  async health(endpointUrl: string): Promise<HealthReport> {
    const started = performance.now();
    try {
      const r = await fetch(`${endpointUrl}/health`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return { ok: r.ok, latency_ms: Math.round(performance.now() - started), message: r.ok ? 'ok' : `HTTP ${r.status}` };
    } catch (e) {
      return { ok: false, latency_ms: Math.round(performance.now() - started), message: (e as Error).message };
    }
  }

  /** Ends every agent process still running (test teardown). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.agents.keys()].map((id) => this.stop({ deployment_id: id })));
  }
}
