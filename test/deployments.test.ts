import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, waitFor, type TestServer } from './helpers/server.js';
import { signIn, assignNft, newEvmWallet } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';
import { signRequest } from '../src/guards/request-signing.js';

/** fetch cannot set Host; node:http can, as a browser resolving agent-N.<host> would send it. */
function getWithHost(port: number, path: string, host: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('deployments', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.stop();
  });

  test('the whole local lifecycle: deploy, live updates in order, running, stop, redeploy', async () => {
    const me = await signIn(server, { nft: '101' });
    const sock = await openWs(server.url, me.access_token);
    sock.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: '101' }));
    const sub = await sock.next((f) => f.type === 'subscribed');
    assert.equal(sub.deployment, null);

    const res = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '101', provider: 'local' } });
    assert.equal(res.status, 202, res.text);
    assert.equal(typeof res.body.deployment_id, 'string');
    assert.equal(res.body.status, 'pending');
    assert.equal(typeof res.body.estimated_time, 'number');

    const running = await sock.next((f) => f.type === 'deployment_status' && f.status === 'running');
    assert.equal(running.deployment_id, res.body.deployment_id);
    assert.equal(running.progress, 100);
    const statuses = sock.frames.filter((f) => f.type === 'deployment_status').map((f) => f.status);
    assert.deepEqual([...new Set(statuses)], ['pending', 'deploying', 'running'], 'transitions arrive in order');
    const progress = sock.frames.filter((f) => f.type === 'deployment_status').map((f) => f.progress);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never goes back');

    const got = await server.request('GET', '/v1/deployments/101', { token: me.access_token });
    assert.equal(got.status, 200);
    assert.equal(got.body.status, 'running');
    assert.equal(got.body.provider, 'local');
    assert.match(got.body.endpoint_url, /^http:\/\/agent-101\.localhost:\d+$/);
    assert.ok(got.body.created_at);
    assert.deepEqual(Object.keys(got.body.resources).sort(), ['cpu', 'disk_mb', 'gpu', 'memory_mb']);
    await waitFor(async () => (await server.request('GET', '/v1/deployments/101', { token: me.access_token })).body.health?.ok === true);

    const again = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '101', provider: 'local' } });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'ALREADY_EXISTS');

    const del = await server.request('DELETE', '/v1/deployments/101', { token: me.access_token });
    assert.equal(del.status, 200);
    assert.ok(['stopping', 'stopped'].includes(del.body.status));
    await sock.next((f) => f.type === 'deployment_status' && f.status === 'stopped');
    const del2 = await server.request('DELETE', '/v1/deployments/101', { token: me.access_token });
    assert.equal(del2.status, 200);
    assert.equal(del2.body.status, 'stopped');

    const re = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '101', provider: 'local' } });
    assert.equal(re.status, 202);
    assert.notEqual(re.body.deployment_id, res.body.deployment_id);
    await sock.next((f) => f.type === 'deployment_status' && f.deployment_id === re.body.deployment_id && f.status === 'running');
    sock.ws.close();
  });

  test('authorization: no token, forged token, someone else\'s NFT', async () => {
    const owner = await signIn(server, { nft: '102' });
    const other = await signIn(server, { nft: '103' });
    const none = await server.request('POST', '/v1/deployments', { body: { nft_token_id: '102', provider: 'local' } });
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'UNAUTHORIZED');
    const forged = await server.request('GET', '/v1/deployments', { token: owner.access_token.slice(0, -4) + 'AAAA' });
    assert.equal(forged.status, 401);
    const notMine = await server.request('POST', '/v1/deployments', { token: other.access_token, body: { nft_token_id: '102', provider: 'local' } });
    assert.equal(notMine.status, 403);
    assert.equal(notMine.body.error.code, 'FORBIDDEN');
    await server.request('POST', '/v1/deployments', { token: owner.access_token, body: { nft_token_id: '102', provider: 'local' } });
    const peek = await server.request('GET', '/v1/deployments/102', { token: other.access_token });
    assert.equal(peek.status, 404, 'another wallet learns nothing');
    const stop = await server.request('DELETE', '/v1/deployments/102', { token: other.access_token });
    assert.equal(stop.status, 403);
    const never = await server.request('GET', '/v1/deployments/102999', { token: owner.access_token });
    assert.equal(never.status, 404);
    // The NFT is sold: the old owner loses control at once (cache invalidated by the registry write).
    assignNft(server, '102', newEvmWallet().address);
    const sold = await server.request('DELETE', '/v1/deployments/102', { token: owner.access_token });
    assert.equal(sold.status, 403);
  });

  test('bad provider, resources and agent settings are 400 with the field named', async () => {
    const me = await signIn(server, { nft: '104' });
    const cases: [unknown, string, string][] = [
      [{ provider: 'local' }, 'MISSING_FIELD', 'nft_token_id'],
      [{ nft_token_id: '104' }, 'MISSING_FIELD', 'provider'],
      [{ nft_token_id: '104', provider: 'aws' }, 'INVALID_FIELD', 'provider'],
      [{ nft_token_id: '104', provider: 'local', resources: { cpu: 1000 } }, 'INVALID_FIELD', 'resources.cpu'],
      [{ nft_token_id: '104', provider: 'local', resources: { memory_mb: 'lots' } }, 'INVALID_FIELD', 'resources.memory_mb'],
      [{ nft_token_id: '104', provider: 'local', resources: 'big' }, 'INVALID_FIELD', 'resources'],
      [{ nft_token_id: '104', provider: 'local', agent: { capabilities: 'chat' } }, 'INVALID_FIELD', 'agent.capabilities'],
      [{ nft_token_id: 'no spaces allowed', provider: 'local' }, 'INVALID_FIELD', 'nft_token_id'],
    ];
    for (const [body, code, field] of cases) {
      const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.code, code, JSON.stringify(r.body));
      assert.equal(r.body.error.details.field, field);
    }
    const remote = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '104', provider: 'akash' } });
    assert.equal(remote.status, 503);
    assert.equal(remote.body.error.code, 'SERVICE_UNAVAILABLE');
    assert.match(remote.body.error.message, /PANTHERS_AKASH_API_KEY|not enabled/);
  });

  test('list: by wallet, filters, sort and pagination', async () => {
    const w = newEvmWallet();
    const nfts = ['201', '202', '203', '204', '205'];
    let token = '';
    for (const nft of nfts) {
      const s = await signIn(server, { nft, wallet: w });
      token = s.access_token;
      const r = await server.request('POST', '/v1/deployments', { token, body: { nft_token_id: nft, provider: 'local' } });
      assert.equal(r.status, 202);
    }
    for (const nft of nfts) await waitFor(async () => (await server.request('GET', `/v1/deployments/${nft}`, { token })).body.status === 'running');
    await server.request('DELETE', '/v1/deployments/203', { token });
    await waitFor(async () => (await server.request('GET', '/v1/deployments/203', { token })).body.status === 'stopped');

    const all = await server.request('GET', '/v1/deployments', { token });
    assert.equal(all.status, 200);
    assert.equal(all.body.total, 5);
    assert.equal(all.body.deployments.length, 5);
    assert.deepEqual(all.body.pagination, { total: 5, limit: 50, offset: 0, has_more: false });

    const page = await server.request('GET', '/v1/deployments?limit=2&offset=1&sort=nft_token_id&order=asc', { token });
    assert.deepEqual(page.body.deployments.map((d: any) => d.nft_token_id), ['202', '203']);
    assert.deepEqual(page.body.pagination, { total: 5, limit: 2, offset: 1, has_more: true });

    const stopped = await server.request('GET', '/v1/deployments?status=stopped', { token });
    assert.deepEqual(stopped.body.deployments.map((d: any) => d.nft_token_id), ['203']);
    assert.equal(stopped.body.total, 1);
    const akash = await server.request('GET', '/v1/deployments?provider=akash', { token });
    assert.equal(akash.body.total, 0);

    for (const [q, field] of [['limit=101', 'limit'], ['limit=0', 'limit'], ['offset=-1', 'offset'], ['sort=wallet', 'sort'], ['order=up', 'order'], ['status=dead', 'status']]) {
      const bad = await server.request('GET', `/v1/deployments?${q}`, { token });
      assert.equal(bad.status, 400, q);
      assert.equal(bad.body.error.code, 'INVALID_FIELD');
      assert.equal(bad.body.error.details.field, field);
    }
  });

  test('the agent answers by Host name and by path; WS refuses bad tokens and bad messages', async () => {
    const me = await signIn(server, { nft: '301' });
    await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '301', provider: 'local' } });
    await waitFor(async () => (await server.request('GET', '/v1/deployments/301', { token: me.access_token })).body.status === 'running');
    const byPath = await server.request('GET', '/v1/agents/301/info');
    assert.equal(byPath.status, 200);
    assert.equal(byPath.body.nft_token_id, '301');
    const byHost = await getWithHost(server.port, '/info', `agent-301.localhost:${server.port}`);
    assert.equal(byHost.status, 200);
    assert.equal(byHost.body.nft_token_id, '301');
    const health = await getWithHost(server.port, '/v1/health', `agent-301.localhost:${server.port}`);
    assert.equal(health.body.status, 'healthy');
    assert.equal('deployments_active' in health.body, false, 'the agent health, not the orchestrator');
    const notDeployed = await server.request('GET', '/v1/agents/399/info');
    assert.equal(notDeployed.status, 404);

    await assert.rejects(openWs(server.url, 'garbage'), /401/);
    const sock = await openWs(server.url, me.access_token);
    sock.ws.send('not json');
    const e1 = await sock.next((f) => f.type === 'error');
    assert.equal(e1.error.code, 'INVALID_REQUEST');
    sock.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment' }));
    const e2 = await sock.next((f) => f.type === 'error' && f.error.code === 'MISSING_FIELD');
    assert.equal(e2.error.details.field, 'nft_token_id');
    sock.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: '999999' }));
    await sock.next((f) => f.type === 'error' && f.error.code === 'FORBIDDEN');
    sock.ws.send(JSON.stringify({ type: 'launch_missiles' }));
    await sock.next((f) => f.type === 'error' && f.error.code === 'INVALID_FIELD');
    sock.ws.send(JSON.stringify({ type: 'ping' }));
    await sock.next((f) => f.type === 'pong');
    sock.ws.close();
  });
});

describe('signed requests', () => {
  test('with PANTHERS_REQUIRE_SIGNED_REQUESTS, verify returns a signing key and deploy/stop require a fresh HMAC', async () => {
    const server = await startServer({ PANTHERS_REQUIRE_SIGNED_REQUESTS: 'true' });
    try {
      const me = await signIn(server, { nft: '601' });
      const key = me.signing_key;
      assert.match(key ?? '', /^[0-9a-f]{64}$/);
      const body = JSON.stringify({ nft_token_id: '601', provider: 'local' });
      const unsigned = await server.request('POST', '/v1/deployments', { token: me.access_token, raw: body, headers: { 'content-type': 'application/json' } });
      assert.equal(unsigned.status, 401);
      assert.equal(unsigned.body.error.code, 'INVALID_SIGNATURE');
      const ts = Math.floor(Date.now() / 1000);
      const sig = signRequest(key!, 'POST', '/v1/deployments', body, ts);
      const headers = { 'content-type': 'application/json', 'x-timestamp': String(ts), 'x-signature': sig };
      const ok = await server.request('POST', '/v1/deployments', { token: me.access_token, raw: body, headers });
      assert.equal(ok.status, 202, ok.text);
      const replay = await server.request('POST', '/v1/deployments', { token: me.access_token, raw: body, headers });
      assert.equal(replay.status, 401, 'a signature works once');
      const get = await server.request('GET', '/v1/deployments/601', { token: me.access_token });
      assert.equal(get.status, 200, 'reads need no signature');
    } finally {
      await server.stop();
    }
  });
});
