import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, request, sleep, waitFor, type TestServer } from './helpers/server.js';
import { signIn, newEvmWallet, type EvmTestWallet } from './helpers/wallets.js';
import { ProcessProvider, LAG_LIMIT } from './helpers/process-provider.js';

const CONTRACT = '0x' + 'beef'.padEnd(40, '0');

/**
 * An Ethereum JSON-RPC node reduced to what ERC-721 ownership needs (../shared/reference/wallet-auth.md,
 * "Ownership: ERC-721 over JSON-RPC"): eth_chainId, and eth_call of ownerOf(uint256) (selector
 * 0x6352211e) at "latest" returning the owner as a 32-byte word, or geth's revert error for a
 * token that does not exist.
 */
function fakeRpc(owners: Map<bigint, string>): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const { id, method, params } = JSON.parse(raw) as { id: number; method: string; params: any[] };
      const reply = (body: object) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id, ...body }));
      };
      if (method === 'eth_chainId') return reply({ result: '0x1' });
      if (method === 'eth_call' && String(params[0].to).toLowerCase() === CONTRACT && /^0x6352211e[0-9a-f]{64}$/.test(params[0].data)) {
        const owner = owners.get(BigInt('0x' + String(params[0].data).slice(10)));
        if (!owner) return reply({ error: { code: 3, message: 'execution reverted', data: '0x7e273289' + String(params[0].data).slice(10) } });
        return reply({ result: '0x' + owner.slice(2).toLowerCase().padStart(64, '0') });
      }
      reply({ error: { code: -32601, message: 'the method does not exist' } });
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  })));
}

/** evm ownership: the remote agent gets the orchestrator's RPC settings and checks ownership itself. */
describe('a remote agent in evm ownership mode', { timeout: 120_000 }, () => {
  const owners = new Map<bigint, string>();
  let rpc: Awaited<ReturnType<typeof fakeRpc>>;
  let server: TestServer;
  const provider = new ProcessProvider('akash');
  let owner: EvmTestWallet;
  let endpoint: string;

  before(async () => {
    rpc = await fakeRpc(owners);
    server = await startServer({
      PANTHERS_OWNERSHIP: 'evm', PANTHERS_EVM_RPC_URL: rpc.url, PANTHERS_NFT_CONTRACT: CONTRACT, PANTHERS_OWNERSHIP_CACHE_MS: '200',
      PANTHERS_HEALTH_INTERVAL_MS: '60000', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: LAG_LIMIT,
    }, { providers: { akash: provider } });
    owner = newEvmWallet();
    owners.set(77n, owner.address);
    const me = await signIn(server, { nft: '77', wallet: owner });
    const d = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '77', provider: 'akash' } });
    assert.equal(d.status, 202, d.text);
    endpoint = (await waitFor(async () => {
      const g = await server.request('GET', '/v1/deployments/77', { token: me.access_token });
      return g.body.status === 'running' ? g.body : undefined;
    }, 20_000)).endpoint_url;
  });
  after(async () => {
    await provider.stopAll();
    await server.stop();
    await rpc.close();
  });

  test('the deploy spec carries the RPC settings (the URL as a secret); the agent signs owners in by asking the chain', async () => {
    const { spec } = [...provider.agents.values()][0]!;
    assert.equal(spec.env.PANTHERS_OWNERSHIP, 'evm');
    assert.equal(spec.env.PANTHERS_NFT_CONTRACT, CONTRACT);
    assert.equal(spec.env.PANTHERS_EVM_RPC_URL, undefined);
    assert.equal(spec.secrets.PANTHERS_EVM_RPC_URL, rpc.url);

    const ch = await waitFor(async () => {
      const r = await request(endpoint, 'POST', '/v1/auth/challenge', { body: { wallet_address: owner.address } });
      return r.status === 200 ? r : undefined;
    });
    const vr = await request(endpoint, 'POST', '/v1/auth/verify', { body: { wallet_address: owner.address, signature: await owner.sign(ch!.body.message), message: ch!.body.message } });
    assert.equal(vr.status, 200, vr.text);
    assert.equal((await request(endpoint, 'POST', '/v1/chat', { token: vr.body.access_token, body: { message: 'on chain' } })).status, 200);
    // Never asked the orchestrator who owns the NFT: the chain answered.
    assert.doesNotMatch(server.logs.text, /"route":"\/owner"/);

    // A transfer on chain nobody reported: the agent's own check ends access (cache 200 ms).
    const buyer = newEvmWallet();
    owners.set(77n, buyer.address);
    await sleep(300);
    const gone = await request(endpoint, 'POST', '/v1/chat', { token: vr.body.access_token, body: { message: 'still?' } });
    assert.equal(gone.status, 403, gone.text);
    const stranger = await request(endpoint, 'POST', '/v1/auth/challenge', { body: { wallet_address: owner.address } });
    assert.equal(stranger.status, 403);
    owners.set(77n, owner.address);
  });
});
