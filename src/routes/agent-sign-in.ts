import * as v from 'valibot';
import { ApiError } from '../errors.js';
import { route, type Request, type RouteDef } from '../server/route.js';
import { nftTokenId } from '../server/validation.js';
import type { SignIn } from '../auth/sign-in.js';
import { walletAddress } from './auth.js';

export interface AgentSignInDeps {
  signIn: SignIn;
  /** Throws NOT_FOUND unless this NFT's agent is served here. */
  requireAgent(nft: string): void | Promise<void>;
  /**
   * The agent's public endpoint, named in the message (its domain and URI). Throws
   * SERVICE_UNAVAILABLE while a remote agent does not know it yet.
   */
  origin(nft: string): string;
  /** Opens whatever the agent's sessions are and signs its access token. */
  issue(wallet: string, nft: string, req: Request<unknown, unknown>): Promise<{ access_token: string; expires_in: number }>;
}

const signature = v.pipe(v.string('must be a string'), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(512, 'must be at most 512 characters'));
const message = v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(4096, 'must be at most 4096 characters'));
const publicKey = v.optional(v.pipe(v.string('must be a string'), v.trim(), v.maxLength(128, 'must be at most 128 characters')));

/**
 * The Agent API's own sign-in (spec: Agent API POST /auth/verify), served the same way by an
 * embedded agent (Host agent-{nft}.<host> or /v1/agents/{nft}/) and a standalone one: the
 * challenge comes from the agent itself (POST /auth/challenge there), names the agent's public
 * endpoint, and is accepted only by that agent. The NFT is the agent's own, so the body has no
 * nft_token_id (one given must be this agent's).
 */
export function agentSignInRoutes(deps: AgentSignInDeps): RouteDef[] {
  const nftOf = async (req: Request<{ nft_token_id?: string }, unknown>): Promise<string> => {
    const nft = req.agentNft!;
    await deps.requireAgent(nft);
    if (req.body.nft_token_id !== undefined && req.body.nft_token_id !== nft) throw new ApiError('NOT_FOUND', `This agent serves NFT ${nft}`);
    req.nft = nft;
    return nft;
  };
  return [
    route({
      method: 'POST', path: '/auth/challenge', rateClass: 'auth', auth: 'none', tags: ['agent'],
      summary: 'A one-time message to sign in to this agent (EIP-4361 naming the agent\'s endpoint; ADR-036 for secret1 wallets)',
      body: v.object({ wallet_address: walletAddress, nft_token_id: v.optional(nftTokenId) }),
      response: v.object({ message: v.string(), nonce: v.string(), expires_at: v.string() }),
      async handler(req) {
        const nft = await nftOf(req);
        return deps.signIn.issueChallenge({ wallet_address: req.body.wallet_address, nft_token_id: nft }, undefined, deps.origin(nft));
      },
    }),
    route({
      method: 'POST', path: '/auth/verify', rateClass: 'auth', auth: 'none', tags: ['agent'],
      summary: 'Verify a message signed for this agent: an access token only this agent accepts',
      body: v.object({ wallet_address: walletAddress, signature, message, public_key: publicKey, nft_token_id: v.optional(nftTokenId) }),
      response: v.object({ access_token: v.string(), expires_in: v.number() }),
      async handler(req) {
        const nft = await nftOf(req);
        const { wallet } = await deps.signIn.verifySignedChallenge(
          { wallet_address: req.body.wallet_address, nft_token_id: nft, signature: req.body.signature, message: req.body.message, public_key: req.body.public_key },
          undefined,
          deps.origin(nft),
        );
        return deps.issue(wallet, nft, req);
      },
    }),
  ];
}
