import { ApiError } from '../errors.js';
import { isEvmAddress, toChecksumAddress } from './evm-address.js';
import { isCosmosAddress, verifyAdr036 } from './cosmos-signature.js';
import { verifyPersonalSign } from './evm-signature.js';

export type WalletKind = 'evm' | 'cosmos';

/** Which signature scheme a wallet address uses; undefined when it is neither form. */
export function walletKind(address: string): WalletKind | undefined {
  if (isEvmAddress(address)) return 'evm';
  if (isCosmosAddress(address.toLowerCase())) return 'cosmos';
  return undefined;
}

/** The one spelling a wallet is stored and compared under: EIP-55 for 0x, lowercase for bech32. */
export function canonicalWallet(address: string): string {
  const kind = walletKind(address);
  if (kind === 'evm') return toChecksumAddress(address);
  if (kind === 'cosmos') return address.toLowerCase();
  throw new ApiError('INVALID_FIELD', 'Invalid field wallet_address: must be a 0x EVM address or a secret1 bech32 address', {
    field: 'wallet_address', reason: 'not a wallet address', in: 'body',
  });
}

export interface WalletSignature {
  wallet: string;
  message: string;
  /** EVM: 65-byte hex personal_sign; Cosmos: base64 64-byte ADR-036 signature */
  signature: string;
  /** Cosmos only: base64 33-byte compressed key (optional: recovered when absent) */
  publicKey?: string;
}

/**
 * Throws unless `wallet` signed `message`: EIP-191 personal_sign for 0x wallets, ADR-036 for
 * bech32. Malformed input -> INVALID_FIELD (400); well-formed but wrong -> INVALID_SIGNATURE (401).
 */
export function verifyWalletSignature(s: WalletSignature): void {
  const kind = walletKind(s.wallet);
  if (kind === 'evm') return verifyPersonalSign(s.wallet, s.message, s.signature);
  if (kind === 'cosmos') return verifyAdr036(s.wallet, s.message, s.signature, s.publicKey);
  canonicalWallet(s.wallet); // throws the INVALID_FIELD
}
