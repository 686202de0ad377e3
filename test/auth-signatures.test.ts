import test from 'node:test';
import assert from 'node:assert/strict';
import { Wallet, Signature, getAddress, verifyMessage, hashMessage } from 'ethers';
import { ApiError } from '../src/errors.js';
import {
  SECP256K1_N, personalMessageDigest, recoverPersonalSigner, signPersonal, newEvmKey, verifyPersonalSign,
} from '../src/auth/evm-signature.js';
import { isEvmAddress, toChecksumAddress } from '../src/auth/evm-address.js';
import { adr036SignBytes, cosmosAddressOf, isCosmosAddress, newCosmosKey, signAdr036, verifyAdr036 } from '../src/auth/cosmos-signature.js';
import { bech32Decode, bech32Encode } from '../src/auth/bech32.js';
import { formatSiweMessage, parseSiweMessage } from '../src/auth/siwe-message.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${String(e)}`);
    return e.code;
  }
}

const MESSAGES = ['hello', 'x', 'multi\nline\n\nmessage', 'ünïcödé 🐆 panthers', 'a'.repeat(1000)];

test('EIP-191: what ethers signs, we recover to the same address', async () => {
  for (const m of MESSAGES) {
    const w = Wallet.createRandom();
    const sig = await w.signMessage(m);
    assert.equal(recoverPersonalSigner(m, sig), w.address);
    assert.equal(Buffer.from(personalMessageDigest(m)).toString('hex'), hashMessage(m).slice(2));
  }
});

test('EIP-191: what we sign, ethers.verifyMessage recovers to our address', () => {
  for (const m of MESSAGES) {
    const k = newEvmKey();
    const sig = signPersonal(m, k.privateKey);
    assert.match(sig, /^0x[0-9a-f]{128}(1b|1c)$/);
    assert.equal(verifyMessage(m, sig), k.address);
    assert.equal(new Wallet('0x' + Buffer.from(k.privateKey).toString('hex')).address, k.address);
  }
});

test('EIP-191: v as 0/1 is accepted; wrong signer, tampered message and high s are refused', async () => {
  const w = Wallet.createRandom();
  const sig = await w.signMessage('sign me');
  const v = parseInt(sig.slice(130), 16);
  const v01 = sig.slice(0, 130) + (v - 27).toString(16).padStart(2, '0');
  assert.equal(recoverPersonalSigner('sign me', v01), w.address);

  const other = Wallet.createRandom();
  assert.equal(code(() => verifyPersonalSign(other.address, 'sign me', sig)), 'INVALID_SIGNATURE');
  assert.equal(code(() => verifyPersonalSign(w.address, 'sign me!', sig)), 'INVALID_SIGNATURE');
  assert.equal(code(() => verifyPersonalSign(w.address.toLowerCase(), 'sign me', sig)), undefined);

  // The malleable twin (n - s, flipped v) is mathematically valid; it must still be refused.
  const parsed = Signature.from(sig);
  const highS = SECP256K1_N - BigInt(parsed.s);
  const twin = '0x' + parsed.r.slice(2) + highS.toString(16).padStart(64, '0') + (parsed.v === 27 ? '1c' : '1b');
  assert.equal(code(() => recoverPersonalSigner('sign me', twin)), 'INVALID_SIGNATURE');
});

test('EIP-191: malformed signatures are INVALID_FIELD, out-of-range ones INVALID_SIGNATURE', () => {
  for (const bad of ['', '0x', '0x1234', 'zz'.repeat(65), '0x' + 'ab'.repeat(64) + '05', '0x' + 'ab'.repeat(66)]) {
    assert.equal(code(() => recoverPersonalSigner('m', bad)), 'INVALID_FIELD', bad);
  }
  assert.equal(code(() => recoverPersonalSigner('m', '0x' + '00'.repeat(64) + '1b')), 'INVALID_SIGNATURE');
});

test('EIP-55 checksums match ethers; a mistyped checksum is not an address', () => {
  for (let i = 0; i < 20; i++) {
    const a = Wallet.createRandom().address.toLowerCase();
    assert.equal(toChecksumAddress(a), getAddress(a));
    assert.ok(isEvmAddress(a) && isEvmAddress(getAddress(a)) && isEvmAddress('0x' + a.slice(2).toUpperCase()));
  }
  const good = getAddress('0x52908400098527886e0f7030069857d2e4169ee7');
  assert.equal(good, '0x52908400098527886E0F7030069857D2E4169EE7'); // EIP-55's own example
  const flipped = good.slice(0, 40) + (good[40] === 'E' ? 'e' : 'E') + good.slice(41);
  assert.equal(isEvmAddress(flipped), false);
  assert.equal(isEvmAddress('0x1234'), false);
});

test('bech32 and Cosmos addresses match published vectors (cosmjs, Ledger)', () => {
  assert.equal(cosmosAddressOf(Buffer.from('AtQaCqFnshaZQp6rIkvAPyzThvCvXSDO+9AzbxVErqJP', 'base64'), 'cosmos'), 'cosmos1h806c7khnvmjlywdrkdgk2vrayy2mmvf9rxk2r');
  assert.equal(
    cosmosAddressOf(Buffer.from('034fef9cd7c4c63588d3b03feb5281b9d232cba34d6f3d71aee59211ffbfe1fe87', 'hex'), 'terra'),
    'terra1w34k53py5v5xyluazqpq65agyajavep29d9qch',
  );
  const k = newCosmosKey();
  assert.match(k.address, /^secret1[02-9ac-hj-np-z]{38}$/);
  assert.ok(isCosmosAddress(k.address));
  const d = bech32Decode(k.address)!;
  assert.equal(bech32Encode(d.prefix, d.bytes), k.address);
  // one changed character breaks the checksum
  const typo = k.address.slice(0, -1) + (k.address.endsWith('q') ? 'p' : 'q');
  assert.equal(isCosmosAddress(typo), false);
  assert.equal(isCosmosAddress(k.address.replace('secret1', 'cosmos1')), false);
});

test('ADR-036: a signature Keplr made verifies (with and without the public key)', () => {
  // From a Keplr signArbitrary call (message = the signer's own address).
  const address = 'cosmos1m9l358xunhhwds0568za49mzhvuxx9uxre5tud';
  const signature = 'vb78/y129cOiWyQkeFF8wCKZsOyzjpILnpEVZ72o5YUhEOmQZzVPcbUqWPLR7aZQ20j6vnYhIuCQN0HEG3igFg==';
  const pub = 'A/MdHVpitzHNSdD1Zw3kY+L5PEIPyd9l6sD5i4aIfXp9';
  assert.equal(code(() => verifyAdr036(address, address, signature, pub)), undefined);
  assert.equal(code(() => verifyAdr036(address, address, signature)), undefined);
  assert.equal(code(() => verifyAdr036(address, address + ' ', signature)), 'INVALID_SIGNATURE');
});

test('ADR-036: our signatures verify; wrong key, wrong signer and malformed input are refused', () => {
  const k = newCosmosKey();
  const other = newCosmosKey();
  const s = signAdr036(k.address, 'hello panthers', k.privateKey);
  assert.equal(code(() => verifyAdr036(k.address, 'hello panthers', s.signature, s.pub_key.value)), undefined);
  assert.equal(code(() => verifyAdr036(k.address, 'hello panthers', s.signature)), undefined);
  assert.equal(code(() => verifyAdr036(other.address, 'hello panthers', s.signature)), 'INVALID_SIGNATURE');
  assert.equal(code(() => verifyAdr036(k.address, 'hello panthers', s.signature, Buffer.from(other.publicKey).toString('base64'))), 'INVALID_SIGNATURE');
  assert.equal(code(() => verifyAdr036(k.address, 'hello panthers', 'not base64!')), 'INVALID_FIELD');
  assert.equal(code(() => verifyAdr036(k.address, 'hello panthers', Buffer.alloc(63).toString('base64'))), 'INVALID_FIELD');
  assert.equal(code(() => verifyAdr036(k.address, 'hello panthers', s.signature, 'AAAA')), 'INVALID_FIELD');
  const doc = new TextDecoder().decode(adr036SignBytes(k.address, 'hi'));
  assert.equal(doc, `{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":"sign/MsgSignData","value":{"data":"aGk=","signer":"${k.address}"}}],"sequence":"0"}`);
});

test('SIWE message formats per EIP-4361 and parses back', () => {
  const fields = {
    domain: 'localhost:3000', address: '0x52908400098527886E0F7030069857D2E4169EE7', statement: 'Sign in to Secret Panthers as the owner of NFT #7.',
    uri: 'http://localhost:3000', version: '1' as const, chainId: '1', nonce: 'abcdef0123456789', issuedAt: '2026-01-01T00:00:00Z',
    expirationTime: '2026-01-01T00:05:00Z', namespace: 'Ethereum' as const,
  };
  const text = formatSiweMessage(fields);
  assert.equal(text, [
    'localhost:3000 wants you to sign in with your Ethereum account:',
    '0x52908400098527886E0F7030069857D2E4169EE7',
    '',
    'Sign in to Secret Panthers as the owner of NFT #7.',
    '',
    'URI: http://localhost:3000',
    'Version: 1',
    'Chain ID: 1',
    'Nonce: abcdef0123456789',
    'Issued At: 2026-01-01T00:00:00Z',
    'Expiration Time: 2026-01-01T00:05:00Z',
  ].join('\n'));
  assert.deepEqual(parseSiweMessage(text), fields);
  assert.equal(parseSiweMessage('hello'), undefined);
  assert.equal(parseSiweMessage(text.replace('Nonce: abcdef0123456789', 'Nonce: short')), undefined);
});
