import { Wallet } from 'ethers';
import { assignOwner } from '../../adapters/ownership/registry.js';
import { newCosmosKey, signAdr036 } from '../../src/auth/cosmos-signature.js';
import type { TestServer } from './server.js';

/**
 * Real wallets for tests. EVM keys and personal_sign come from ethers (an implementation
 * independent of ours), so a test that signs here and verifies on the server cross-checks both.
 */
export interface EvmTestWallet {
  /** EIP-55 checksummed */
  address: string;
  /** 0x hex */
  privateKey: string;
  /** EIP-191 personal_sign, as MetaMask does it: 0x r||s||v, v 27/28 */
  sign(message: string): Promise<string>;
}

export function newEvmWallet(): EvmTestWallet {
  const w = Wallet.createRandom();
  return { address: w.address, privateKey: w.privateKey, sign: (m) => w.signMessage(m) };
}

export interface CosmosTestWallet {
  /** secret1... */
  address: string;
  privateKey: Uint8Array;
  /** base64 33-byte compressed public key */
  publicKey: string;
  /** What Keplr's signArbitrary returns (ADR-036) */
  sign(message: string): { signature: string; pub_key: { type: string; value: string } };
}

export function newCosmosWallet(): CosmosTestWallet {
  const k = newCosmosKey();
  return {
    address: k.address,
    privateKey: k.privateKey,
    publicKey: Buffer.from(k.publicKey).toString('base64'),
    sign: (m) => signAdr036(k.address, m, k.privateKey),
  };
}

/** Makes `owner` the owner of `nft` in the server's registry table (takes effect at once). */
export function assignNft(server: TestServer, nft: string, owner: string): void {
  assignOwner(server.app.ctx.db, nft, owner, server.app.ctx.now());
  server.app.ctx.ownership.invalidate(nft);
}

export interface SignedIn {
  wallet: string;
  privateKey: string;
  access_token: string;
  refresh_token: string;
  session_id: string;
  /** present when the server requires signed requests */
  signing_key?: string;
}

/**
 * Signs in over HTTP as a fresh EVM wallet that owns `nft` (assigned in the registry table):
 * POST /auth/challenge, personal_sign, POST /auth/verify. Throws with the server's answer on failure.
 * Pass `wallet` to sign in as an existing wallet instead.
 */
export async function signIn(server: TestServer, opts: { nft: string; wallet?: EvmTestWallet }): Promise<SignedIn> {
  const wallet = opts.wallet ?? newEvmWallet();
  assignNft(server, opts.nft, wallet.address);
  const ch = await server.request('POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address, nft_token_id: opts.nft } });
  if (ch.status !== 200) throw new Error(`challenge failed: ${ch.status} ${ch.text}`);
  const signature = await wallet.sign(ch.body.message);
  const vr = await server.request('POST', '/v1/auth/verify', {
    body: { wallet_address: wallet.address, nft_token_id: opts.nft, signature, message: ch.body.message },
  });
  if (vr.status !== 200) throw new Error(`verify failed: ${vr.status} ${vr.text}`);
  return {
    wallet: wallet.address,
    privateKey: wallet.privateKey,
    access_token: vr.body.access_token,
    refresh_token: vr.body.refresh_token,
    session_id: vr.body.session_id,
    signing_key: vr.body.signing_key,
  };
}
