import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ripemd160 } from '@noble/hashes/legacy.js';
import { ApiError } from '../errors.js';
import { bech32Decode, bech32Encode } from './bech32.js';
import { SECP256K1_N } from './evm-signature.js';

export const SECRET_PREFIX = 'secret';
const HALF_N = SECP256K1_N >> 1n;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A `secret1...` bech32 address holding a 20-byte account id, with a valid checksum. */
export function isCosmosAddress(text: string, prefix = SECRET_PREFIX): boolean {
  const d = bech32Decode(text);
  return d !== undefined && d.prefix === prefix && d.bytes.length === 20;
}

/** bech32(prefix, ripemd160(sha256(compressed public key))): the Cosmos SDK account address. */
export function cosmosAddressOf(compressedPublicKey: Uint8Array, prefix = SECRET_PREFIX): string {
  return bech32Encode(prefix, ripemd160(sha256(compressedPublicKey)));
}

/**
 * The ADR-036 sign doc Keplr's signArbitrary signs: amino JSON, keys sorted, no spaces, the
 * message as base64 of its UTF-8 bytes. (cosmjs `makeADR36AminoSignDoc` + `serializeSignDoc`.)
 */
export function adr036SignBytes(signer: string, message: string): Uint8Array {
  const data = Buffer.from(message, 'utf8').toString('base64');
  const doc =
    '{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"",' +
    `"msgs":[{"type":"sign/MsgSignData","value":{"data":${JSON.stringify(data)},"signer":${JSON.stringify(signer)}}}],` +
    '"sequence":"0"}';
  return new TextEncoder().encode(doc);
}

/**
 * Throws unless `address` signed `message` with ADR-036. Malformed signature or public key:
 * INVALID_FIELD; well-formed but wrong: INVALID_SIGNATURE. Without a public key both recovery
 * candidates are tried and the one whose address matches is kept.
 */
export function verifyAdr036(address: string, message: string, signatureB64: string, publicKeyB64?: string): void {
  const sig = decodeBase64(signatureB64, 64, 'signature');
  const pub = publicKeyB64 === undefined ? undefined : decodeBase64(publicKeyB64, 33, 'public_key');
  if (pub && pub[0] !== 2 && pub[0] !== 3) throw invalidField('public_key', 'must be a 33-byte compressed secp256k1 key (02/03 prefix)');
  const signer = address.toLowerCase();
  const prefix = bech32Decode(signer)?.prefix ?? SECRET_PREFIX;
  const hash = sha256(adr036SignBytes(signer, message));
  let signature;
  try {
    signature = secp256k1.Signature.fromBytes(sig, 'compact');
  } catch {
    throw badSignature('r or s is out of range');
  }
  if (signature.s > HALF_N) throw badSignature('s is in the upper half of the curve order (malleable signature)');
  if (pub) {
    if (cosmosAddressOf(pub, prefix) !== signer) throw badSignature('the public key does not belong to this wallet');
    let ok = false;
    try {
      ok = secp256k1.verify(sig, hash, pub, { prehash: false, lowS: true, format: 'compact' });
    } catch {
      ok = false; // not a point on the curve
    }
    if (!ok) throw badSignature('the signature does not verify with this public key');
    return;
  }
  for (const recovery of [0, 1]) {
    try {
      const key = signature.addRecoveryBit(recovery).recoverPublicKey(hash).toBytes(true);
      if (cosmosAddressOf(key, prefix) === signer) return;
    } catch {
      // this recovery bit yields no point: try the other
    }
  }
  throw badSignature('the signature was made by another wallet');
}

/** What Keplr's signArbitrary returns, made with a raw private key (tests, CLI). */
export function signAdr036(signer: string, message: string, privateKey: Uint8Array): { signature: string; pub_key: { type: string; value: string } } {
  const sig = secp256k1.sign(sha256(adr036SignBytes(signer, message)), privateKey, { prehash: false, lowS: true });
  return {
    signature: Buffer.from(sig).toString('base64'),
    pub_key: { type: 'tendermint/PubKeySecp256k1', value: Buffer.from(secp256k1.getPublicKey(privateKey, true)).toString('base64') },
  };
}

/** A new random Cosmos key and its `secret1...` address. */
export function newCosmosKey(prefix = SECRET_PREFIX): { privateKey: Uint8Array; address: string; publicKey: Uint8Array } {
  const privateKey = secp256k1.utils.randomSecretKey();
  const publicKey = secp256k1.getPublicKey(privateKey, true);
  return { privateKey, publicKey, address: cosmosAddressOf(publicKey, prefix) };
}

function decodeBase64(text: string, bytes: number, field: string): Uint8Array {
  if (!BASE64.test(text) || text.length % 4 !== 0) throw invalidField(field, `must be base64 of ${bytes} bytes`);
  const out = Buffer.from(text, 'base64');
  if (out.length !== bytes) throw invalidField(field, `must be base64 of ${bytes} bytes, got ${out.length}`);
  return new Uint8Array(out);
}

function invalidField(field: string, reason: string): ApiError {
  return new ApiError('INVALID_FIELD', `Invalid field ${field}: ${reason}`, { field, reason, in: 'body' });
}

function badSignature(reason: string): ApiError {
  return new ApiError('INVALID_SIGNATURE', 'Signature verification failed', { reason });
}
