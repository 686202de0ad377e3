import type { Deployment } from './deployments-repo.js';

/** Deployment as the API shows it. */
export function deploymentView(d: Deployment) {
  return {
    deployment_id: d.id,
    nft_token_id: d.nft_token_id,
    status: d.status,
    provider: d.provider,
    endpoint_url: d.endpoint_url,
    progress: d.progress,
    created_at: new Date(d.created_at).toISOString(),
    updated_at: new Date(d.updated_at).toISOString(),
    resources: d.resources,
    agent: d.agent,
    health: d.health,
    error: d.error,
    details: d.details,
  };
}
export type DeploymentView = ReturnType<typeof deploymentView>;
