import type { AgentSettings } from '../providers/provider.js';

/** The character an agent has when its deployment gives none. */
export function defaultCharacter(nft: string, model: string): AgentSettings {
  return {
    name: `Panther #${nft}`,
    system_prompt: `You are Panther #${nft}, the AI agent bound to NFT ${nft}. You speak only with the NFT's owner. Be helpful and concise.`,
    model,
    capabilities: ['chat'],
  };
}
