import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';

// Pure JS (no node:crypto), so the same file runs in Node, browsers and workers.

/** A wallet the SDK signs sign-in challenges with. */
export interface MessageSigner {
  address: string;
  /** EIP-191 personal_sign of the message: 0x r||s||v hex */
  signMessage(message: string): Promise<string>;
}

/** The minimal EIP-1193 provider surface (window.ethereum, WalletConnect, ...). */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

/** keccak256("\x19Ethereum Signed Message:\n" + byte length + message) (EIP-191). */
export function personalMessageDigest(message: string): Uint8Array {
  const body = utf8ToBytes(message);
  const prefix = utf8ToBytes(`\x19Ethereum Signed Message:\n${body.length}`);
  const all = new Uint8Array(prefix.length + body.length);
  all.set(prefix);
  all.set(body, prefix.length);
  return keccak_256(all);
}

function privateKeyBytes(key: string | Uint8Array): Uint8Array {
  if (typeof key !== 'string') return key;
  const hex = key.startsWith('0x') ? key.slice(2) : key;
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new TypeError('a private key is 32 bytes: 64 hex characters, optionally 0x-prefixed');
  return hexToBytes(hex);
}

/** EIP-55 checksummed address of a secp256k1 private key. */
export function addressOfPrivateKey(key: string | Uint8Array): string {
  const pub = secp256k1.getPublicKey(privateKeyBytes(key), false);
  return toChecksumAddress('0x' + bytesToHex(keccak_256(pub.subarray(1)).subarray(12)));
}

export function toChecksumAddress(address: string): string {
  const hex = address.slice(2).toLowerCase();
  const hash = keccak_256(utf8ToBytes(hex));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const nibble = (hash[i >> 1]! >> (i % 2 === 0 ? 4 : 0)) & 0xf;
    out += nibble >= 8 ? hex[i]!.toUpperCase() : hex[i];
  }
  return out;
}

/** personal_sign with a raw private key, as wallets do it: 0x r||s||v, v 27/28, low s. */
export function signPersonalMessage(message: string, key: string | Uint8Array): string {
  // The digest is keccak already: no sha256 prehash (noble's default). 'recovered' = [rec, r, s].
  const sig = secp256k1.sign(personalMessageDigest(message), privateKeyBytes(key), { prehash: false, format: 'recovered', lowS: true });
  return '0x' + bytesToHex(sig.subarray(1)) + (27 + sig[0]!).toString(16);
}

/** A MessageSigner for a private key held by this program (scripts, bots, the CLI). */
export function privateKeySigner(key: string | Uint8Array): MessageSigner {
  const bytes = privateKeyBytes(key);
  return { address: addressOfPrivateKey(bytes), signMessage: async (m) => signPersonalMessage(m, bytes) };
}

/**
 * A MessageSigner over an EIP-1193 wallet (browsers): `personal_sign` with the message as
 * 0x-hex UTF-8 and the address, which is what MetaMask and others expect.
 */
export function providerSigner(provider: Eip1193Provider, address: string): MessageSigner {
  return {
    address,
    async signMessage(message) {
      const sig = await provider.request({ method: 'personal_sign', params: ['0x' + bytesToHex(utf8ToBytes(message)), address] });
      if (typeof sig !== 'string') throw new TypeError('the wallet returned no signature');
      return sig;
    },
  };
}

/**
 * X-Signature for a request when the session has a signing_key: hex HMAC-SHA256 keyed with the
 * hex-decoded key over `timestamp \n METHOD \n path \n sha256hex(body)`, where path is the request
 * target as sent (with /v1 and ?query). The same formula as the server's signRequest
 * (src/guards/request-signing.ts), byte for byte.
 */
export function signRequest(key: string, method: string, path: string, body: string | Uint8Array, timestamp: number | string): string {
  const bodyBytes = typeof body === 'string' ? utf8ToBytes(body) : body;
  const text = `${timestamp}\n${method.toUpperCase()}\n${path}\n${bytesToHex(sha256(bodyBytes))}`;
  return bytesToHex(hmac(sha256, hexToBytes(key), utf8ToBytes(text)));
}
