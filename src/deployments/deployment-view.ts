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

/**
 * What a reader may see of a deployment: all of it when they made it; when it was made by a
 * previous owner of the NFT, everything but the system prompt (it can be personal: it is the
 * previous owner's, not the NFT's), flagged `previous_owner: true`.
 */
export function viewForReader<V extends { agent: { system_prompt: string } }>(view: V, deployer: string, reader: string): V & { previous_owner?: true } {
  if (deployer.toLowerCase() === reader.toLowerCase()) return view;
  return { ...view, agent: { ...view.agent, system_prompt: '' }, previous_owner: true };
}
