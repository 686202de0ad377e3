import type { FeatureModule } from '../feature.js';
import { OwnershipWatcher } from '../auth/ownership-watcher.js';
import { sameWallet } from '../auth/ownership.js';
import { deploymentTopic } from '../deployments/deployment-frames.js';
import { SESSION_ACTOR, type SessionMsg } from '../contracts/session-messages.js';

/**
 * Sessions follow NFT ownership: the watcher revokes the previous owner's sessions of an NFT
 * that changed hands (their sockets and streams end with FORBIDDEN / close 4003 and an audit
 * row), drops other wallets' subscriptions to its deployment, and applies
 * PANTHERS_TRANSFER_CONVERSATIONS to the previous holder's conversations.
 */
export const ownershipTransferFeature: FeatureModule = (f) => {
  const { ctx } = f;
  const { sessions, transfers } = ctx.storage;
  const watcher = new OwnershipWatcher({
    ownership: ctx.ownership,
    log: ctx.log,
    intervalMs: ctx.config.ownershipPollMs,
    reconcileOnStart: ctx.config.ownership === 'registry',
    sessionsOf: (nft) => sessions.activeForNft(nft, ctx.now()),
    nftsWithSessions: () => sessions.activeNfts(ctx.now()),
    revoke: async (sid) => {
      await ctx.directory.ask(SESSION_ACTOR, sid, { type: 'revoke', why: 'ownership_lost' } satisfies SessionMsg);
    },
    transferred: async (nft, owner, previous) => {
      // Agent tokens of the NFT held by another wallet end too (remote agents within their
      // revocation poll), whichever session holds them: a session opened for another NFT of the
      // previous owner may have exchanged one.
      await ctx.agentAccess.ownerIs(nft, owner);
      const keep = (auth: { sub: string }) => owner !== undefined && sameWallet(auth.sub, owner);
      ctx.publisher.dropSubscribers?.(deploymentTopic(nft), keep, {
        type: 'unsubscribed', channel: 'deployment', nft_token_id: nft, reason: 'ownership_lost',
        error: { code: 'FORBIDDEN', message: `This wallet no longer owns NFT ${nft}`, details: { reason: 'ownership_lost' } },
      });
      if (ctx.config.transferConversations === 'wipe') {
        const n = await transfers.wipeConversations(nft, owner?.toLowerCase() ?? '');
        if (n) ctx.log.info({ nft, conversations: n }, 'previous owner conversations wiped');
      }
    },
  });
  f.onStart(() => watcher.start());
  f.onStop(() => watcher.stop());
};
