import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';

/**
 * The development-only wallet: a secp256k1 key kept in this browser's localStorage, signing
 * EIP-191 personal_sign like MetaMask does. Loaded as its own chunk, only when chosen, only on
 * a server in PANTHERS_ENV=development. Not a wallet for real value.
 */
const KEY = 'panthers.devWallet.v1';

export interface DevWallet {
  address: string;
  sign(message: string): string;
  forget(): void;
}

export function openDevWallet(): DevWallet {
  let priv = localStorage.getItem(KEY);
  if (!priv || !/^[0-9a-f]{64}$/.test(priv)) {
    priv = toHex(secp256k1.utils.randomSecretKey());
    localStorage.setItem(KEY, priv);
  }
  const secret = fromHex(priv);
  const pub = secp256k1.getPublicKey(secret, false);
  const address = '0x' + toHex(keccak_256(pub.subarray(1)).subarray(12));
  return {
    address,
    sign(message: string): string {
      const bytes = new TextEncoder().encode(message);
      const prefix = new TextEncoder().encode(`\x19Ethereum Signed Message:\n${bytes.length}`);
      const digest = keccak_256(concat(prefix, bytes));
      // noble v2: prehash off (the digest is ours); 'recovered' is [recovery, r, s].
      const sig = secp256k1.sign(digest, secret, { prehash: false, format: 'recovered' });
      return '0x' + toHex(sig.subarray(1)) + (27 + sig[0]!).toString(16);
    },
    forget() {
      localStorage.removeItem(KEY);
    },
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function fromHex(h: string): Uint8Array {
  return new Uint8Array(h.match(/../g)!.map((x) => parseInt(x, 16)));
}
