import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { spawnCli, tempDir, request, waitFor, startServer, type ServerProcess } from './helpers/server.js';
import { newEvmWallet, signIn } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';
import { signInProcess } from './helpers/process-sign-in.js';
import { startFakeAkash } from './fakes/akash-api.js';
import { startFakeSecretVm } from './fakes/secretvm-api.js';

const serveEnv = (dir: string, extra: Record<string, string> = {}) => ({
  PORT: '0', PANTHERS_DATA_DIR: dir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_HEALTH_INTERVAL_MS: '200', ...extra,
});

describe('restart recovery after SIGKILL', () => {
  test('local: deploys in flight and running agents come back; nothing is deployed twice', async () => {
    const dir = tempDir();
    let srv: ServerProcess = await spawnCli(['serve'], serveEnv(dir));
    const wallet = newEvmWallet();
    const nfts = Array.from({ length: 40 }, (_, i) => String(800 + i));
    const tokens = new Map<string, string>();
    for (const nft of nfts) tokens.set(nft, await signInProcess(srv.url, dir, nft, wallet));
    // One running before the crash.
    const first = await request(srv.url, 'POST', '/v1/deployments', { token: tokens.get('800'), body: { nft_token_id: '800', provider: 'local' } });
    assert.equal(first.status, 202);
    await waitFor(async () => (await request(srv.url, 'GET', '/v1/deployments/800', { token: tokens.get('800') })).body.status === 'running');
    const chat = await request(srv.url, 'POST', '/v1/agents/800/chat', { token: tokens.get('800'), body: { message: 'before the crash' } });
    assert.equal(chat.status, 200);
    // The rest fired together; the process is killed as the first answers arrive.
    const accepted = new Set<string>();
    const posts = nfts.slice(1).map((nft) =>
      request(srv.url, 'POST', '/v1/deployments', { token: tokens.get(nft), body: { nft_token_id: nft, provider: 'local' } })
        .then((r) => { if (r.status === 202) accepted.add(nft); })
        .catch(() => undefined));
    await waitFor(() => accepted.size >= 5, 10_000, 1);
    srv.child.kill('SIGKILL');
    await Promise.all(posts);
    await srv.exited;

    srv = await spawnCli(['serve'], serveEnv(dir));
    try {
      assert.match(srv.output(), /recovering deployments/);
      for (const nft of ['800', ...accepted]) {
        await waitFor(async () => (await request(srv.url, 'GET', `/v1/deployments/${nft}`, { token: tokens.get(nft) })).body.status === 'running', 15_000);
      }
      const info = await request(srv.url, 'GET', '/v1/agents/800/info');
      assert.equal(info.status, 200, 'the embedded agent was started again');
      const hist = await request(srv.url, 'GET', `/v1/agents/800/chat/history?conversation_id=${chat.body.conversation_id}`, { token: tokens.get('800') });
      assert.equal(hist.body.messages[0].content, 'before the crash');
      const db = new Database(path.join(dir, 'panthers.db'), { readonly: true });
      try {
        const perNft = db.prepare('SELECT nft_token_id, count(*) AS n FROM deployments GROUP BY nft_token_id HAVING n > 1').all();
        assert.deepEqual(perNft, [], 'one deployment row per NFT: nothing deployed twice');
        const stuck = db.prepare(`SELECT count(*) AS n FROM deployments WHERE status IN ('pending','deploying','stopping')`).get() as { n: number };
        assert.equal(stuck.n, 0, 'no deployment left mid-lifecycle');
      } finally {
        db.close();
      }
    } finally {
      srv.child.kill('SIGTERM');
      await srv.exited;
    }
  });

  test('akash: killed while waiting for bids, the deployment resumes from the saved dseq and ends with one lease', async () => {
    const fake = await startFakeAkash({ apiKey: 'k-akash', bidsAfterPolls: 30 });
    const dir = tempDir();
    const env = serveEnv(dir, { PANTHERS_AKASH_API_URL: fake.url, PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true', PANTHERS_AKASH_API_KEY: 'k-akash', PANTHERS_AKASH_POLL_MS: '50', PANTHERS_AKASH_BID_TIMEOUT_MS: '20000' });
    let srv = await spawnCli(['serve'], env);
    try {
      const token = await signInProcess(srv.url, dir, '900');
      const r = await request(srv.url, 'POST', '/v1/deployments', { token, body: { nft_token_id: '900', provider: 'akash' } });
      assert.equal(r.status, 202, r.text);
      await waitFor(() => fake.counts.deploymentsCreated === 1);
      await waitFor(async () => (await request(srv.url, 'GET', '/v1/deployments/900', { token })).body.progress >= 10);
      srv.child.kill('SIGKILL');
      await srv.exited;
      srv = await spawnCli(['serve'], env);
      const done = await waitFor(async () => {
        const g = await request(srv.url, 'GET', '/v1/deployments/900', { token });
        return ['running', 'failed'].includes(g.body.status) && g.body;
      }, 20_000);
      assert.equal(done.status, 'running', JSON.stringify(done));
      assert.equal(done.deployment_id, r.body.deployment_id);
      assert.equal(fake.activeDeployments().length, 1, 'one open deployment at the provider');
      assert.equal(fake.counts.leasesCreated, 1, 'one lease');
      assert.ok(done.endpoint_url.startsWith('http'));
    } finally {
      srv.child.kill('SIGTERM');
      await srv.exited;
      await fake.close();
    }
  });
});

describe('remote providers through the server', () => {
  test('akash: the whole lifecycle with progress over WS, then stop closes it at the provider', async () => {
    const fake = await startFakeAkash({ apiKey: 'k2', bidsAfterPolls: 3, readyAfterPolls: 2 });
    const server = await startServer({ PANTHERS_AKASH_API_URL: fake.url, PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true', PANTHERS_AKASH_API_KEY: 'k2', PANTHERS_AKASH_POLL_MS: '20' });
    try {
      const me = await signIn(server, { nft: '910' });
      const sock = await openWs(server.url, me.access_token);
      sock.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: '910' }));
      await sock.next((f) => f.type === 'subscribed');
      const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '910', provider: 'akash', resources: { cpu: 1, memory_mb: 1024 } } });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.estimated_time > 1, true);
      const running = await sock.next((f) => f.type === 'deployment_status' && f.status === 'running', 15_000);
      const steps = sock.frames.filter((f) => f.type === 'deployment_status');
      assert.ok(steps.length >= 5, `several progress steps (${steps.map((s) => s.message).join(' | ')})`);
      const progress = steps.map((f) => f.progress);
      assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
      assert.ok(running.endpoint_url);
      assert.equal(fake.counts.leasesCreated, 1);
      assert.ok(!fake.activeDeployments()[0]!.sdl.includes('undefined'));
      const del = await server.request('DELETE', '/v1/deployments/910', { token: me.access_token });
      assert.equal(del.status, 200);
      await sock.next((f) => f.type === 'deployment_status' && f.status === 'stopped', 10_000);
      assert.equal(fake.activeDeployments().length, 0, 'closed at the provider');
      sock.ws.close();
    } finally {
      await server.stop();
      await fake.close();
    }
  });

  test('akash: no bids ends in failed with a clear message; no secret in any log line', async () => {
    const fake = await startFakeAkash({ apiKey: 'k3', noBids: true });
    const server = await startServer({
      PANTHERS_AKASH_API_URL: fake.url, PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true', PANTHERS_AKASH_API_KEY: 'k3', PANTHERS_AKASH_POLL_MS: '20', PANTHERS_AKASH_BID_TIMEOUT_MS: '300',
      PANTHERS_OPENAI_API_KEY: 'sk-live-VERYSECRET-999',
    });
    try {
      const me = await signIn(server, { nft: '911' });
      await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '911', provider: 'akash' } });
      const failed = await waitFor(async () => {
        const g = await server.request('GET', '/v1/deployments/911', { token: me.access_token });
        return g.body.status === 'failed' && g.body;
      }, 10_000);
      assert.match(failed.error, /bid/i);
      assert.ok(!server.logs.text.includes('VERYSECRET'));
      assert.ok(!JSON.stringify(failed).includes('VERYSECRET'));
      const rows = server.app.ctx.db.prepare('SELECT message FROM deployment_events').all() as { message: string }[];
      assert.ok(rows.every((r) => !r.message.includes('VERYSECRET')));
    } finally {
      await server.stop();
      await fake.close();
    }
  });

  test('secret_vm: lifecycle with the attestation URL in the details', async () => {
    const fake = await startFakeSecretVm({ apiKey: 'svm-key' });
    const server = await startServer({ PANTHERS_SECRETVM_API_URL: fake.url, PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true', PANTHERS_SECRETVM_API_KEY: 'svm-key', PANTHERS_SECRETVM_POLL_MS: '20' });
    try {
      const me = await signIn(server, { nft: '920' });
      const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '920', provider: 'secret_vm' } });
      assert.equal(r.status, 202, r.text);
      const running = await waitFor(async () => {
        const g = await server.request('GET', '/v1/deployments/920', { token: me.access_token });
        return ['running', 'failed'].includes(g.body.status) && g.body;
      }, 15_000);
      assert.equal(running.status, 'running', JSON.stringify(running));
      assert.match(running.endpoint_url, /^https:\/\//);
      assert.match(String(running.details?.attestation_url), /:29343\/cpu\.html$/);
      const del = await server.request('DELETE', '/v1/deployments/920', { token: me.access_token });
      assert.equal(del.status, 200);
      await waitFor(async () => (await server.request('GET', '/v1/deployments/920', { token: me.access_token })).body.status === 'stopped');
    } finally {
      await server.stop();
      await fake.close();
    }
  });
});
