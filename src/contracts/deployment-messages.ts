import type { DeployResult, HealthReport, ProviderName, Resources, AgentSettings } from '../providers/provider.js';

export { deploymentView, type DeploymentView } from '../deployments/deployment-view.js';

/** The kind name of an NFT's deployment state machine (actors/deployment-actor.ts). */
export const DEPLOYMENT_ACTOR = 'deployment';

/**
 * What a DeploymentActor handles. `deploy`, `stop`, `get`, `recover` and `health` come from
 * requests and may cross nodes (plain data; the reply of deploy/stop/get is a DeploymentView, also
 * plain). The others are the actor's own reports from provider work and never leave its node.
 */
export type DeploymentMsg =
  | { type: 'deploy'; wallet: string; provider: ProviderName; resources: Resources; agent: AgentSettings }
  | { type: 'stop' }
  | { type: 'get' }
  | { type: 'recover' }
  /** after a crash of this actor: drive a mid-lifecycle deployment no provider work is driving */
  | { type: 'resume' }
  | { type: 'step'; id: string; progress: number; message: string }
  | { type: 'deployed'; id: string; result: DeployResult }
  /** `transient`: a timeout, an unreachable or busy provider, an agent not ready yet, a refused call (not "the resource is gone") */
  | { type: 'deploy_failed'; id: string; message: string; transient?: boolean }
  | { type: 'stopped'; id: string }
  | { type: 'stop_failed'; id: string; message: string }
  | { type: 'released'; id: string }
  | { type: 'release_failed'; id: string; message: string }
  | { type: 'health' }
  | { type: 'health_result'; id: string; report: HealthReport };
