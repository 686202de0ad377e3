import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EvmOwnership } from '../adapters/ownership/evm.js';
import { RegistryOwnership, assignOwner } from '../adapters/ownership/registry.js';
import type { OwnershipVerifier } from '../src/auth/ownership.js';
import { openDatabase } from '../src/db/database.js';
import { ApiError } from '../src/errors.js';
import { startServer, tempDir } from './helpers/server.js';
import { newEvmWallet } from './helpers/wallets.js';

const CONTRACT = '0x' + 'c0ffee'.padEnd(40, '0');

/**
 * A JSON-RPC node on 127.0.0.1 that speaks what an ERC-721 contract answers: eth_chainId, and
 * eth_call of ownerOf(uint256) (selector 0x6352211e) returning the owner word or, for a token that
 * does not exist, geth's revert error object (code 3, "execution reverted", data = the custom error).
 */
class FakeRpc {
  readonly owners = new Map<bigint, string>();
  chainId = 1;
  calls = 0;
  /** set to make every eth_call fail with a non-revert error */
  failCalls: { code: number; message: string } | undefined;
  private server = http.createServer((req, res) => this.handle(req, res));
  url = '';

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const { id, method, params } = JSON.parse(raw) as { id: number; method: string; params: any[] };
      const reply = (body: object) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id, ...body }));
      };
      if (method === 'eth_chainId') return reply({ result: '0x' + this.chainId.toString(16) });
      if (method === 'eth_call') {
        this.calls++;
        const [{ to, data }, block] = params;
        if (this.failCalls) return reply({ error: this.failCalls });
        if (String(to).toLowerCase() !== CONTRACT || block !== 'latest' || !/^0x6352211e[0-9a-f]{64}$/.test(data)) {
          return reply({ error: { code: -32602, message: 'invalid argument' } });
        }
        const owner = this.owners.get(BigInt('0x' + data.slice(10)));
        if (!owner) {
          // OpenZeppelin 5: ERC721NonexistentToken(uint256)
          return reply({ error: { code: 3, message: 'execution reverted', data: '0x7e273289' + data.slice(10) } });
        }
        return reply({ result: '0x' + owner.slice(2).toLowerCase().padStart(64, '0') });
      }
      reply({ error: { code: -32601, message: 'the method does not exist' } });
    });
  }
}

async function errCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    assert.ok(e instanceof ApiError, String(e));
    return e.code;
  }
}

/** The contract every OwnershipVerifier meets: owned -> its owner, unknown -> undefined. */
async function ownershipContract(name: string, v: OwnershipVerifier, owned: { nft: string; owner: string }, unknownNft: string): Promise<void> {
  assert.equal((await v.ownerOf(owned.nft))?.toLowerCase(), owned.owner.toLowerCase(), name);
  assert.equal(await v.ownerOf(unknownNft), undefined, name);
}

test('ownership contract: registry and evm answer the same way', async () => {
  const owner = newEvmWallet().address;
  const db = openDatabase(tempDir());
  assignOwner(db, '5', owner);
  await ownershipContract('registry', new RegistryOwnership(db), { nft: '5', owner }, '6');
  db.close();
  const rpc = await new FakeRpc().start();
  try {
    rpc.owners.set(5n, owner);
    await ownershipContract('evm', new EvmOwnership({ rpcUrl: rpc.url, contract: CONTRACT, chainId: 1 }), { nft: '5', owner }, '6');
  } finally {
    await rpc.stop();
  }
});

test('evm verifier: wrong chain, non-revert RPC errors and a down RPC are SERVICE_UNAVAILABLE', async () => {
  const rpc = await new FakeRpc().start();
  try {
    rpc.owners.set(2n ** 255n, newEvmWallet().address);
    const v = new EvmOwnership({ rpcUrl: rpc.url, contract: CONTRACT, chainId: 1 });
    assert.ok(await v.ownerOf((2n ** 255n).toString()), 'uint256-sized ids are encoded right');
    assert.equal(await v.ownerOf('not-a-number'), undefined);

    rpc.failCalls = { code: -32000, message: 'header not found' };
    assert.equal(await errCode(v.ownerOf('1')), 'SERVICE_UNAVAILABLE');
    rpc.failCalls = { code: -32603, message: 'Error: VM Exception while processing transaction: reverted with reason string' };
    assert.equal(await v.ownerOf('1'), undefined, 'hardhat-style revert text means no token');
    rpc.failCalls = undefined;

    rpc.chainId = 5;
    const wrongChain = new EvmOwnership({ rpcUrl: rpc.url, contract: CONTRACT, chainId: 1 });
    assert.equal(await errCode(wrongChain.ownerOf('1')), 'SERVICE_UNAVAILABLE');
  } finally {
    await rpc.stop();
  }
  const down = new EvmOwnership({ rpcUrl: rpc.url, contract: CONTRACT, chainId: 1, timeoutMs: 2000 });
  assert.equal(await errCode(down.ownerOf('1')), 'SERVICE_UNAVAILABLE');
});

test('server with PANTHERS_OWNERSHIP=evm: sign-in against the RPC, cached answers, 503 when the RPC is down', async () => {
  const rpc = await new FakeRpc().start();
  const w = newEvmWallet();
  rpc.owners.set(77n, w.address);
  const server = await startServer({
    PANTHERS_OWNERSHIP: 'evm', PANTHERS_EVM_RPC_URL: rpc.url, PANTHERS_NFT_CONTRACT: CONTRACT, PANTHERS_CHAIN_ID: '1',
  });
  try {
    const ch = await server.request('POST', '/v1/auth/challenge', { body: { wallet_address: w.address, nft_token_id: '77' } });
    assert.equal(ch.status, 200, ch.text);
    const vr = await server.request('POST', '/v1/auth/verify', {
      body: { wallet_address: w.address, nft_token_id: '77', signature: await w.sign(ch.body.message), message: ch.body.message },
    });
    assert.equal(vr.status, 200, vr.text);
    assert.equal(rpc.calls, 1, 'the verify re-check was answered from the cache');

    const stranger = await server.request('POST', '/v1/auth/challenge', { body: { wallet_address: newEvmWallet().address, nft_token_id: '77' } });
    assert.equal(stranger.status, 403);
    const missing = await server.request('POST', '/v1/auth/challenge', { body: { wallet_address: w.address, nft_token_id: '78' } });
    assert.equal(missing.status, 403);
    assert.equal(missing.body.error.code, 'FORBIDDEN');

    await rpc.stop();
    const down = await server.request('POST', '/v1/auth/challenge', { body: { wallet_address: w.address, nft_token_id: '79' } });
    assert.equal(down.status, 503);
    assert.equal(down.body.error.code, 'SERVICE_UNAVAILABLE');
  } finally {
    await server.stop();
    await rpc.stop().catch(() => {});
  }
});
