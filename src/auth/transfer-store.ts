/**
 * What a transfer of an NFT does to stored data (PANTHERS_TRANSFER_CONVERSATIONS=wipe): the
 * conversations of the NFT held by wallets other than the new owner are deleted with their
 * messages, atomically.
 */
export interface TransferStore {
  /** Deletes the conversations of `nft` not held by `keepWalletLower` ('' keeps none); returns how many. */
  wipeConversations(nft: string, keepWalletLower: string): Promise<number>;
}
