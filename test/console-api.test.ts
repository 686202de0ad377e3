import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EvmOwnership } from '../adapters/ownership/evm.js';
import { startServer, waitFor, type TestServer } from './helpers/server.js';
import { assignNft, newEvmWallet, signIn } from './helpers/wallets.js';

/**
 * The routes the web console reads (GET /v1/console/config, /v1/nfts, /v1/providers, the Agent
 * API's /conversations) and the static handler's edges, over real HTTP to the real server.
 */

const CONTRACT = '0x' + 'beef'.padEnd(40, '0');

/**
 * A JSON-RPC node answering as an OpenZeppelin 5 ERC721Enumerable contract does
 * (contracts/token/ERC721/extensions/ERC721Enumerable.sol): supportsInterface(0x780e9d63)
 * true, balanceOf(owner), tokenOfOwnerByIndex(owner, i) reverting with
 * ERC721OutOfBoundsIndex(owner, index) past the balance. `enumerable = false` answers as a
 * plain ERC721 (supportsInterface false for that id).
 */
class EnumerableRpc {
  enumerable = true;
  readonly owned = new Map<string, bigint[]>();
  private server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const { id, method, params } = JSON.parse(raw) as { id: number; method: string; params: any[] };
      const reply = (body: object) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id, ...body }));
      };
      const word = (n: bigint | number) => ({ result: '0x' + BigInt(n).toString(16).padStart(64, '0') });
      if (method === 'eth_chainId') return reply({ result: '0x1' });
      // The server's Transfer-log watcher polls these; no transfers happen here.
      if (method === 'eth_blockNumber') return reply({ result: '0x10' });
      if (method === 'eth_getLogs') return reply({ result: [] });
      if (method !== 'eth_call') return reply({ error: { code: -32601, message: 'method not found' } });
      const data = String(params[0]?.data ?? '');
      const sel = data.slice(0, 10);
      const arg = (i: number) => data.slice(10 + 64 * i, 10 + 64 * (i + 1));
      if (sel === '0x01ffc9a7') return reply(word(this.enumerable && arg(0).startsWith('780e9d63') ? 1 : arg(0).startsWith('80ac58cd') ? 1 : 0));
      if (!this.enumerable && (sel === '0x2f745c59')) return reply({ error: { code: 3, message: 'execution reverted' } });
      const owner = '0x' + arg(0).slice(24);
      const tokens = this.owned.get(owner) ?? [];
      if (sel === '0x70a08231') return reply(word(tokens.length));
      if (sel === '0x2f745c59') {
        const i = Number(BigInt('0x' + arg(1)));
        if (i >= tokens.length) return reply({ error: { code: 3, message: 'execution reverted', data: '0xa57d13dc' } });
        return reply(word(tokens[i]!));
      }
      return reply({ error: { code: -32602, message: 'invalid argument' } });
    });
  });
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
}

describe('console API routes', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PANTHERS_ENV: 'test', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '60000' });
  });
  after(() => server.stop());

  it('GET /v1/console/config says how to sign in, and offers no dev wallet outside development', async () => {
    const r = await server.request('GET', '/v1/console/config');
    assert.equal(r.status, 200);
    assert.equal(r.body.dev_wallet, false);
    assert.equal(r.body.env, 'test');
    assert.equal(r.body.ownership, 'registry');
    assert.equal(r.body.cosmos_chain_id, 'secret-4');
    const dev = await startServer({ PANTHERS_ENV: 'development', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '60000' });
    try {
      assert.equal((await dev.request('GET', '/v1/console/config')).body.dev_wallet, true);
    } finally {
      await dev.stop();
    }
  });

  it('GET /v1/nfts lists a holder\'s tokens from the registry, numerically, paged', async () => {
    const w = newEvmWallet();
    for (const t of ['10', '9', '100', 'alpha']) assignNft(server, t, w.address);
    const r = await server.request('GET', `/v1/nfts?owner=${w.address}&limit=3`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data.map((d: { nft_token_id: string }) => d.nft_token_id), ['9', '10', '100']);
    assert.deepEqual(r.body.pagination, { total: 4, limit: 3, offset: 0, has_more: true });
    assert.equal(r.body.enumerable, true);
    const bad = await server.request('GET', '/v1/nfts?owner=nobody');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_FIELD');
    assert.equal((await server.request('GET', '/v1/nfts')).body.error.code, 'MISSING_FIELD');
  });

  it('GET /v1/providers names the configured providers and models (auth required)', async () => {
    assert.equal((await server.request('GET', '/v1/providers')).status, 401);
    const s = await signIn(server, { nft: '41' });
    const r = await server.request('GET', '/v1/providers', { token: s.access_token });
    assert.equal(r.status, 200, r.text);
    const byName = Object.fromEntries(r.body.providers.map((p: { name: string }) => [p.name, p]));
    assert.equal(byName.local.configured, true);
    assert.equal(byName.akash.configured, false);
    assert.match(byName.akash.missing, /PANTHERS_AKASH_API_KEY/);
    assert.deepEqual(r.body.models.find((m: { default: boolean }) => m.default), { id: 'scripted:scripted', backend: 'scripted', default: true });
    assert.equal(r.body.resources.max.gpu, 1);
  });

  it('GET /v1/agents/{nft}/conversations lists the caller\'s conversations, newest first', async () => {
    const s = await signIn(server, { nft: '42' });
    const dep = await server.request('POST', '/v1/deployments', { token: s.access_token, body: { nft_token_id: '42', provider: 'local' } });
    assert.equal(dep.status, 202, dep.text);
    await waitFor(async () => (await server.request('GET', '/v1/deployments/42', { token: s.access_token })).body.status === 'running');
    const first = await server.request('POST', '/v1/agents/42/chat', { token: s.access_token, body: { message: 'first conversation' } });
    const second = await server.request('POST', '/v1/agents/42/chat', { token: s.access_token, body: { message: 'second one' } });
    assert.equal(second.status, 200, second.text);
    const r = await server.request('GET', '/v1/agents/42/conversations?limit=1', { token: s.access_token });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.data.length, 1);
    assert.equal(r.body.pagination.total, 2);
    assert.equal(r.body.pagination.has_more, true);
    const all = await server.request('GET', '/v1/agents/42/conversations', { token: s.access_token });
    const ids = all.body.data.map((c: { conversation_id: string }) => c.conversation_id);
    assert.deepEqual(new Set(ids), new Set([first.body.conversation_id, second.body.conversation_id]));
    assert.ok(all.body.data.some((c: { title: string; messages: number }) => c.title === 'first conversation' && c.messages === 2));
    // Another wallet's token (for its own NFT) sees nothing of this agent.
    const other = await signIn(server, { nft: '43' });
    const refused = await server.request('GET', '/v1/agents/42/conversations', { token: other.access_token });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'FORBIDDEN');
  });

  it('the static handler: HEAD, 404 in the spec\'s format, never on an agent\'s host name', async () => {
    const head = await fetch(server.url + '/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(head.headers.get('content-security-policy')!, /default-src 'none'/);
    const missing = await server.request('GET', '/assets/nope.js');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'NOT_FOUND');
    // An embedded agent's host name goes to the Agent API, not the console.
    const host = `agent-42.localhost:${server.port}`;
    const agent = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: server.port, path: '/', headers: { host } }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      }).on('error', reject);
    });
    assert.doesNotMatch(agent.body, /<!doctype html>/i);
    // POST / is not a console request either.
    assert.equal((await server.request('POST', '/', { body: {} })).body.error.code, 'NOT_FOUND');
  });
});

describe('NFT listing over ERC-721 Enumerable', () => {
  let rpc: EnumerableRpc;
  before(async () => {
    rpc = await new EnumerableRpc().start();
  });
  after(() => rpc.stop());

  it('lists tokenOfOwnerByIndex when the contract supports the interface, else says it cannot', async () => {
    const owner = newEvmWallet().address.toLowerCase();
    rpc.owned.set(owner, [5n, 77n, 2n ** 200n]);
    const evm = new EvmOwnership({ rpcUrl: rpc.url, contract: CONTRACT, chainId: 1 });
    assert.deepEqual(await evm.listOwned(owner, 2, 1), { tokens: ['77', (2n ** 200n).toString()], total: 3 });
    rpc.enumerable = false;
    const plain = new EvmOwnership({ rpcUrl: rpc.url, contract: CONTRACT, chainId: 1 });
    assert.equal(await plain.listOwned(owner, 10, 0), undefined);
    const server = await startServer({ PANTHERS_OWNERSHIP: 'evm', PANTHERS_EVM_RPC_URL: rpc.url, PANTHERS_NFT_CONTRACT: CONTRACT });
    try {
      const r = await server.request('GET', `/v1/nfts?owner=${owner}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.enumerable, false);
      assert.deepEqual(r.body.data, []);
    } finally {
      await server.stop();
    }
  });
});
