import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { ApiError } from '../errors.js';
import { evmAddressOfPublicKey, toChecksumAddress } from './evm-address.js';

/** secp256k1 group order; s above n/2 is the malleable twin of a valid signature. */
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = SECP256K1_N >> 1n;
const SIGNATURE_HEX = /^(0x)?([0-9a-fA-F]{130}|[0-9a-fA-F]{128})$/;
const LOW_255_BITS = (1n << 255n) - 1n;

/** keccak256("\x19Ethereum Signed Message:\n" + byte length + message): what personal_sign signs (EIP-191). */
export function personalMessageDigest(message: string): Uint8Array {
  const body = new TextEncoder().encode(message);
  const prefix = new TextEncoder().encode(`\x19Ethereum Signed Message:\n${body.length}`);
  const all = new Uint8Array(prefix.length + body.length);
  all.set(prefix);
  all.set(body, prefix.length);
  return keccak_256(all);
}

export interface EvmSignature {
  r: bigint;
  s: bigint;
  /** 0 or 1 */
  recovery: number;
}

/**
 * Parses a 65-byte r||s||v hex signature (v 27/28 or 0/1), or a 64-byte EIP-2098 compact one
 * (r || yParityAndS: the top bit of the second word is the y parity). Malformed: INVALID_FIELD.
 */
export function parseEvmSignature(hex: string): EvmSignature {
  if (!SIGNATURE_HEX.test(hex)) {
    throw invalidSignatureField('must be a 65-byte hex signature (0x + 130 hex characters) or a 64-byte EIP-2098 compact one');
  }
  const body = hex.startsWith('0x') ? hex.slice(2) : hex;
  if (body.length === 128) {
    const vs = BigInt('0x' + body.slice(64));
    return { r: BigInt('0x' + body.slice(0, 64)), s: vs & LOW_255_BITS, recovery: Number(vs >> 255n) };
  }
  const v = parseInt(body.slice(128, 130), 16);
  const recovery = v >= 27 ? v - 27 : v;
  if (recovery !== 0 && recovery !== 1) throw invalidSignatureField(`has recovery byte v=${v}; expected 27, 28, 0 or 1`);
  return { r: BigInt('0x' + body.slice(0, 64)), s: BigInt('0x' + body.slice(64, 128)), recovery };
}

/**
 * Recovers the checksummed address that personal_sign'ed `message`. Throws INVALID_SIGNATURE for
 * r/s out of range, a high s (malleable duplicate) or a signature no key can have made.
 */
export function recoverPersonalSigner(message: string, signatureHex: string): string {
  const { r, s, recovery } = parseEvmSignature(signatureHex);
  if (r <= 0n || r >= SECP256K1_N || s <= 0n || s >= SECP256K1_N) throw badSignature('r or s is out of range');
  if (s > HALF_N) throw badSignature('s is in the upper half of the curve order (malleable signature)');
  let point;
  try {
    // The digest is keccak already: no sha256 prehash (noble's default) on top.
    point = new secp256k1.Signature(r, s, recovery).recoverPublicKey(personalMessageDigest(message));
  } catch {
    throw badSignature('no public key recovers from this signature');
  }
  return evmAddressOfPublicKey(point.toBytes(false));
}

/** Throws INVALID_SIGNATURE unless `address` personal_sign'ed `message` (addresses compare case-insensitively). */
export function verifyPersonalSign(address: string, message: string, signatureHex: string): void {
  const signer = recoverPersonalSigner(message, signatureHex);
  if (signer.toLowerCase() !== address.toLowerCase()) throw badSignature('the signature was made by another wallet');
}

/** personal_sign with a raw private key: 0x r||s||v hex, v 27/28 (what wallets and ethers produce). */
export function signPersonal(message: string, privateKey: Uint8Array): string {
  // noble's 'recovered' format puts the recovery byte FIRST: [rec, r(32), s(32)].
  const sig = secp256k1.sign(personalMessageDigest(message), privateKey, { prehash: false, format: 'recovered', lowS: true });
  return '0x' + Buffer.from(sig.subarray(1)).toString('hex') + (27 + sig[0]!).toString(16);
}

/** A new random EVM key and its checksummed address. */
export function newEvmKey(): { privateKey: Uint8Array; address: string } {
  const privateKey = secp256k1.utils.randomSecretKey();
  return { privateKey, address: evmAddressOfPrivateKey(privateKey) };
}

export function evmAddressOfPrivateKey(privateKey: Uint8Array): string {
  return evmAddressOfPublicKey(secp256k1.getPublicKey(privateKey, false));
}

export { toChecksumAddress };

function invalidSignatureField(reason: string): ApiError {
  return new ApiError('INVALID_FIELD', `Invalid field signature: ${reason}`, { field: 'signature', reason, in: 'body' });
}

function badSignature(reason: string): ApiError {
  return new ApiError('INVALID_SIGNATURE', 'Signature verification failed', { reason });
}
