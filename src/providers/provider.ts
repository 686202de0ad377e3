/**
 * Where an NFT's agent runs. Implementations live in adapters/providers (local, akash, secretvm)
 * and are called only from that NFT's DeploymentActor, through the provider's p-queue.
 * Every implementation runs the same contract suite (test/provider-contract.ts).
 */
export type ProviderName = 'local' | 'akash' | 'secret_vm';
export const PROVIDERS: readonly ProviderName[] = ['secret_vm', 'akash', 'local'];

export interface Resources {
  cpu: number;
  memory_mb: number;
  disk_mb: number;
  gpu: number;
}

export interface AgentSettings {
  name: string;
  system_prompt: string;
  model: string;
  capabilities: string[];
}

export interface DeploySpec {
  deploymentId: string;
  nftTokenId: string;
  resources: Resources;
  agent: AgentSettings;
  /** Plain settings for the agent process (model backend, URLs). */
  env: Record<string, string>;
  /** Secrets (model API keys): sent through the provider's secret mechanism only, never logged. */
  secrets: Record<string, string>;
}

/** What the provider knows about one deployment; persisted as JSON in deployments.provider_ref. */
export type ProviderRef = Record<string, unknown>;

export interface DeployContext {
  signal: AbortSignal;
  /** Reports a step: progress 0-100 (never going back) and a message for the deployment's channel. */
  progress(progress: number, message: string): void;
  /**
   * Persists the provider's reference as soon as it exists, so a restart can reconcile it. Await
   * it: on PostgreSQL the write is a round trip (SQLite: already written when it returns), and a
   * write refused by fencing aborts `signal` (another node drives the deployment now).
   */
  saveRef(ref: ProviderRef): void | Promise<void>;
  /** Set when resuming after a restart: what saveRef last stored. */
  ref?: ProviderRef;
  /**
   * True when this process lost track of the deployment (a restart or an actor crash): a create
   * may have gone out whose answer never got saved, so look it up (marker, name) before creating.
   */
  resuming?: boolean;
  /**
   * What the provider needs later but must not put in the ref because it is secret (Akash: the
   * manifest the lease sends). Stored encrypted, deleted when the deployment ends; null deletes.
   */
  saveSecret?(value: string | null): void | Promise<void>;
  /** Set when resuming: what saveSecret last stored. */
  secret?: string;
}

export interface DeployResult {
  endpointUrl: string;
  ref: ProviderRef;
  /** Provider-specific facts shown in GET /deployments/{nft} (e.g. attestation URL, raw status). */
  details?: Record<string, unknown>;
}

export interface ProviderStatus {
  state: 'deploying' | 'running' | 'stopped' | 'failed' | 'unknown';
  endpointUrl?: string;
  message?: string;
  details?: Record<string, unknown>;
}

export interface HealthReport {
  ok: boolean;
  latency_ms: number;
  message: string;
}

export interface ProviderAdapter {
  readonly name: ProviderName;
  /** undefined when usable; otherwise what the operator must configure (names the env vars). */
  missingConfig(): string | undefined;
  /** Creates (or, with ctx.ref, resumes) a deployment and resolves when the agent serves. */
  deploy(spec: DeploySpec, ctx: DeployContext): Promise<DeployResult>;
  /** The provider's view of a deployment, for restart reconciliation. */
  status(ref: ProviderRef, signal?: AbortSignal): Promise<ProviderStatus>;
  /** Stops and releases everything; idempotent. */
  stop(ref: ProviderRef, signal?: AbortSignal): Promise<void>;
  /**
   * Resources this deployment created at the provider, found without a saved ref (Akash: the SDL
   * marker; SecretVM: the deterministic name). A stop releases these too, so a create whose answer
   * was lost (or is still in flight) is never left billing.
   */
  findCreated?(spec: DeploySpec, signal?: AbortSignal): Promise<ProviderRef[]>;
  /** Checks the running agent. */
  health(endpointUrl: string, ref: ProviderRef, signal?: AbortSignal): Promise<HealthReport>;
}
