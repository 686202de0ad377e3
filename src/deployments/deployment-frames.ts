import type { Deployment, DeploymentEvent } from './deployments-repo.js';

/** The WS topic of an NFT's deployment channel. */
export function deploymentTopic(nft: string): string {
  return `deployment:${nft}`;
}

/** The spec's `deployment_status` message for one transition. */
export function deploymentFrame(ev: DeploymentEvent, endpointUrl: Deployment['endpoint_url']): string {
  return JSON.stringify({
    type: 'deployment_status',
    deployment_id: ev.deployment_id,
    nft_token_id: ev.nft_token_id,
    status: ev.status,
    progress: ev.progress,
    message: ev.message,
    endpoint_url: endpointUrl,
    timestamp: new Date(ev.created_at).toISOString(),
  });
}
