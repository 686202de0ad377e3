import { keccak_256 } from '@noble/hashes/sha3.js';

const HEX_ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** EIP-55 mixed-case checksum form of a 0x address. */
export function toChecksumAddress(address: string): string {
  const hex = address.slice(2).toLowerCase();
  const hash = keccak_256(new TextEncoder().encode(hex));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const nibble = (hash[i >> 1]! >> (i % 2 === 0 ? 4 : 0)) & 0xf;
    out += nibble >= 8 ? hex[i]!.toUpperCase() : hex[i];
  }
  return out;
}

/**
 * A 0x + 40 hex address. All-lower and all-upper case carry no checksum and are accepted;
 * mixed case must be a correct EIP-55 checksum (a typo in one character is then caught).
 */
export function isEvmAddress(text: string): boolean {
  if (!HEX_ADDRESS.test(text)) return false;
  const body = text.slice(2);
  if (body === body.toLowerCase() || body === body.toUpperCase()) return true;
  return toChecksumAddress(text) === text;
}

/** The address of an uncompressed (65-byte, 0x04...) secp256k1 public key. */
export function evmAddressOfPublicKey(uncompressed: Uint8Array): string {
  const hash = keccak_256(uncompressed.subarray(1));
  return toChecksumAddress('0x' + Buffer.from(hash.subarray(12)).toString('hex'));
}
