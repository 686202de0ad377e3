import type { AgentSettings } from '../providers/provider.js';

/**
 * Where embedded agents live: the local provider mounts an NFT's agent here, and the Agent API
 * answers only for mounted agents. Implemented by the agents feature.
 */
export interface AgentHost {
  mount(nft: string, settings: AgentSettings): Promise<void>;
  unmount(nft: string): void;
  isMounted(nft: string): boolean;
  /** Round trip through the agent's actor; rejects when it does not answer. */
  ping(nft: string): Promise<void>;
  /** The agent's URL by Host name, e.g. http://agent-123.localhost:3000 */
  endpointUrl(nft: string): string;
}
