import test from 'node:test';
import assert from 'node:assert/strict';
import { Signature, Wallet, hashMessage } from 'ethers';
import { createPublicClient, http } from 'viem';
import { verifyHash } from 'viem/actions';
import { parseSiweMessage, validateSiweMessage } from 'viem/siwe';
import { spawnCli, request, tempDir, type ServerProcess } from './helpers/server.js';
import { cliAssign, signInOver, LAG_MS } from './helpers/sign-in-http.js';
import { newEvmWallet } from './helpers/wallets.js';
import { FakeEvmRpc, wrap6492 } from './fakes/evm-rpc.js';

/**
 * Wallet sign-in as wallets and verifiers check it: the SIWE domain and URI are the origin the
 * user signs for (viem's validateSiweMessage is the independent check), EIP-2098 compact
 * signatures, and smart-contract wallets (EIP-1271 deployed, EIP-6492 counterfactual) with the
 * evm verifier against the fake JSON-RPC node. Real server process, real keys.
 */
async function stop(p: ServerProcess): Promise<void> {
  p.child.kill('SIGTERM');
  await p.exited;
}

async function challenge(url: string, wallet: string, nft: string, headers: Record<string, string> = {}) {
  const ch = await request(url, 'POST', '/v1/auth/challenge', { body: { wallet_address: wallet, nft_token_id: nft }, headers });
  assert.equal(ch.status, 200, ch.text);
  return ch.body.message as string;
}

const verify = (url: string, wallet: string, nft: string, message: string, signature: string, headers: Record<string, string> = {}) =>
  request(url, 'POST', '/v1/auth/verify', { body: { wallet_address: wallet, nft_token_id: nft, message, signature }, headers });

test('SIWE: a challenge from http://127.0.0.1:PORT names that origin and passes viem validateSiweMessage; allowed dApp origins get their own', async () => {
  const dataDir = tempDir();
  const w = newEvmWallet();
  await cliAssign(dataDir, '1', w.address);
  const p = await spawnCli(['serve'], {
    PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS,
    PANTHERS_CORS_ORIGINS: 'https://dapp.example,https://other.example',
  });
  try {
    const host = `127.0.0.1:${p.port}`;
    const message = await challenge(p.url, w.address, '1');
    const parsed = parseSiweMessage(message);
    assert.equal(parsed.domain, host);
    assert.equal(parsed.uri, `http://${host}`);
    assert.equal(validateSiweMessage({ message: parsed, domain: host, address: w.address as `0x${string}` }), true, 'viem accepts the domain');
    assert.equal(validateSiweMessage({ message: parsed, domain: 'localhost:3000' }), false);
    assert.equal((await verify(p.url, w.address, '1', message, await w.sign(message))).status, 200);

    // A dApp on an allowed origin: the message names the page the user is on.
    const dapp = { origin: 'https://dapp.example' };
    const m2 = await challenge(p.url, w.address, '1', dapp);
    const p2 = parseSiweMessage(m2);
    assert.equal(p2.domain, 'dapp.example');
    assert.equal(p2.uri, 'https://dapp.example');
    assert.equal(validateSiweMessage({ message: p2, domain: 'dapp.example' }), true);
    assert.equal((await verify(p.url, w.address, '1', m2, await w.sign(m2), dapp)).status, 200);

    // Verified from another allowed origin than the one it names: refused.
    const m3 = await challenge(p.url, w.address, '1', dapp);
    const cross = await verify(p.url, w.address, '1', m3, await w.sign(m3), { origin: 'https://other.example' });
    assert.equal(cross.status, 401);
    assert.equal(cross.body.error.code, 'INVALID_SIGNATURE');

    // An origin that is not allowed gets the public URL, not its own name.
    const m4 = await challenge(p.url, w.address, '1', { origin: 'https://evil.example' });
    assert.equal(parseSiweMessage(m4).domain, host);
  } finally {
    await stop(p);
  }
});

test('EIP-2098: a 64-byte compact signature signs in; a flipped parity bit does not', async () => {
  const dataDir = tempDir();
  const w = Wallet.createRandom();
  await cliAssign(dataDir, '2', w.address);
  const p = await spawnCli(['serve'], { PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: dataDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS });
  try {
    const m = await challenge(p.url, w.address, '2');
    const compact = Signature.from(await w.signMessage(m)).compactSerialized;
    assert.equal(compact.length, 2 + 128);
    // Flip the yParity bit (top bit of the second word): another key recovers, refused.
    const m2 = await challenge(p.url, w.address, '2');
    const c2 = Signature.from(await w.signMessage(m2)).compactSerialized;
    const top = parseInt(c2.slice(66, 67), 16) ^ 0x8;
    const flipped = c2.slice(0, 66) + top.toString(16) + c2.slice(67);
    assert.equal((await verify(p.url, w.address, '2', m2, flipped)).status, 401);
    const ok = await verify(p.url, w.address, '2', m, compact);
    assert.equal(ok.status, 200, ok.text);
  } finally {
    await stop(p);
  }
});

test('smart-contract wallets with the evm verifier: EIP-1271 (deployed) and EIP-6492 (not deployed yet) sign in; others\' keys do not', async () => {
  const rpc = await new FakeEvmRpc().start();
  const p = await spawnCli(['serve'], {
    PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: tempDir(), PANTHERS_RATE_LIMITS: 'off', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_MS,
    PANTHERS_OWNERSHIP: 'evm', PANTHERS_EVM_RPC_URL: rpc.url, PANTHERS_NFT_CONTRACT: rpc.contract,
  });
  try {
    // EIP-1271: a deployed wallet contract whose owner key signs.
    const ownerKey = Wallet.createRandom();
    const deployed = '0x' + 'a11ce'.padEnd(40, '0');
    const deployedChecksummed = (await import('ethers')).getAddress(deployed);
    rpc.smartWallets.set(deployedChecksummed, ownerKey.address);
    rpc.owners.set(31n, deployedChecksummed);
    const m = await challenge(p.url, deployedChecksummed, '31');
    const sig = await ownerKey.signMessage(m); // personal_sign digest, checked by isValidSignature
    const ok = await verify(p.url, deployedChecksummed, '31', m, sig);
    assert.equal(ok.status, 200, ok.text);
    assert.ok(rpc.methods.includes('eth_getCode'));
    const m2 = await challenge(p.url, deployedChecksummed, '31');
    const bad = await verify(p.url, deployedChecksummed, '31', m2, await Wallet.createRandom().signMessage(m2));
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error.code, 'INVALID_SIGNATURE');

    // EIP-6492: a counterfactual wallet; the signature carries its factory call.
    const owner2 = Wallet.createRandom();
    const cf = rpc.counterfactual(owner2.address, 7n);
    rpc.owners.set(32n, cf.address);
    const m3 = await challenge(p.url, cf.address, '32');
    const wrapped = wrap6492(cf.factory, cf.factoryCalldata, await owner2.signMessage(m3));
    assert.ok(wrapped.length > 512, 'a 6492 envelope is longer than an EOA signature');
    const ok6492 = await verify(p.url, cf.address, '32', m3, wrapped);
    assert.equal(ok6492.status, 200, ok6492.text);
    // The fake answers the deployless validator call as viem's verifyHash sends it (an independent client).
    const client = createPublicClient({ transport: http(rpc.url) });
    const m4 = await challenge(p.url, cf.address, '32');
    const w4 = wrap6492(cf.factory, cf.factoryCalldata, await owner2.signMessage(m4));
    assert.equal(await verifyHash(client, { address: cf.address as `0x${string}`, hash: hashMessage(m4) as `0x${string}`, signature: w4 as `0x${string}` }), true);
    const forged = wrap6492(cf.factory, cf.factoryCalldata, await Wallet.createRandom().signMessage(m4));
    assert.equal(await verifyHash(client, { address: cf.address as `0x${string}`, hash: hashMessage(m4) as `0x${string}`, signature: forged as `0x${string}` }), false);
    assert.equal((await verify(p.url, cf.address, '32', m4, forged)).status, 401);
  } finally {
    await stop(p);
    await rpc.stop();
  }
});
