import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, waitFor } from './helpers/server.js';
import { assignNft, newEvmWallet, signIn } from './helpers/wallets.js';

/**
 * Scale checks through the real server: correctness at 1,000 of a thing, not speed (bench/ measures
 * speed). Times and memory are printed as diagnostics for the issue notes.
 */
describe('at scale', () => {
  test('1,000 NFTs deployed concurrently on the local provider all reach running', async (t) => {
    const server = await startServer({ PANTHERS_HEALTH_INTERVAL_MS: '60000', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '5000' });
    try {
      const wallet = newEvmWallet();
      const nfts = Array.from({ length: 1000 }, (_, i) => String(10_000 + i));
      for (const nft of nfts) assignNft(server, nft, wallet.address);
      const me = await signIn(server, { nft: nfts[0]!, wallet });
      const rss0 = process.memoryUsage().rss;
      const t0 = performance.now();
      const answers = await Promise.all(nfts.map((nft) =>
        server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: nft, provider: 'local' } })));
      const refused = answers.filter((a) => a.status !== 202);
      assert.equal(refused.length, 0, `refused: ${refused.slice(0, 3).map((a) => a.text).join('; ')}`);
      await waitFor(() => (server.app.ctx.db.prepare(`SELECT count(*) AS n FROM deployments WHERE status = 'running'`).get() as { n: number }).n === 1000, 60_000, 50);
      const ms = performance.now() - t0;
      const list = await server.request('GET', '/v1/deployments?status=running&limit=100', { token: me.access_token });
      assert.equal(list.body.total, 1000);
      const health = await server.request('GET', '/v1/health');
      assert.equal(health.body.deployments_active, 1000);
      t.diagnostic(`1000 local deploys to running: ${Math.round(ms)} ms; RSS +${Math.round((process.memoryUsage().rss - rss0) / 1048576)} MiB (test process holds the server and its clients)`);
    } finally {
      await server.stop();
    }
  });

  test('1,000 concurrent WS streaming conversations all complete with every chunk in order', async (t) => {
    // One wallet on one address opens all 1,000 sockets: lift the per-wallet and per-IP caps.
    const server = await startServer({
      PANTHERS_SCRIPTED_DELAY_MS: '5', PANTHERS_HEALTH_INTERVAL_MS: '60000', PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '5000',
      PANTHERS_WS_MAX_PER_WALLET: '100000', PANTHERS_WS_MAX_PER_IP: '100000',
    });
    const sockets: WebSocket[] = [];
    try {
      const N = 1000;
      const wallet = newEvmWallet();
      const nfts = Array.from({ length: N }, (_, i) => String(20_000 + i));
      for (const nft of nfts) assignNft(server, nft, wallet.address);
      const first = await signIn(server, { nft: nfts[0]!, wallet });
      await Promise.all(nfts.map((nft) => server.request('POST', '/v1/deployments', { token: first.access_token, body: { nft_token_id: nft, provider: 'local' } })));
      await waitFor(() => (server.app.ctx.db.prepare(`SELECT count(*) AS n FROM deployments WHERE status = 'running'`).get() as { n: number }).n === N, 60_000, 50);
      // A token per NFT (chat needs a token for the agent's own NFT).
      const tokens: string[] = [];
      for (let i = 0; i < N; i += 50) {
        const batch = await Promise.all(nfts.slice(i, i + 50).map((nft) => signIn(server, { nft, wallet })));
        tokens.push(...batch.map((b) => b.access_token));
      }
      const wsUrl = server.url.replace('http', 'ws');
      const t0 = performance.now();
      let chunksTotal = 0;
      const delays: number[] = [];
      const results = await Promise.all(nfts.map((nft, i) => new Promise<{ ok: boolean; why?: string }>((resolve) => {
        const ws = new WebSocket(`${wsUrl}/ws?token=${tokens[i]}`);
        sockets.push(ws);
        let text = '';
        let last = performance.now();
        const timer = setTimeout(() => resolve({ ok: false, why: 'timeout' }), 90_000);
        ws.on('open', () => ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, message: `hello from socket ${i}` })));
        ws.on('message', (data) => {
          const f = JSON.parse(data.toString());
          if (f.type === 'error') {
            clearTimeout(timer);
            resolve({ ok: false, why: JSON.stringify(f) });
          }
          if (f.type !== 'chat_chunk') return;
          const now = performance.now();
          delays.push(now - last);
          last = now;
          if (!f.done) {
            chunksTotal++;
            text += f.content;
            return;
          }
          clearTimeout(timer);
          ws.close();
          // In order and complete: the concatenated chunks are exactly the final response.
          resolve(text === f.response && f.response.includes(`hello from socket ${i}`) ? { ok: true } : { ok: false, why: `mismatch: ${text} != ${f.response}` });
        });
        ws.on('error', (e) => resolve({ ok: false, why: String(e) }));
      })));
      const ms = performance.now() - t0;
      const bad = results.filter((r) => !r.ok);
      assert.equal(bad.length, 0, `${bad.length} failed: ${bad.slice(0, 3).map((b) => b.why).join('; ')}`);
      delays.sort((a, b) => a - b);
      const p99 = delays[Math.floor(delays.length * 0.99)]!;
      t.diagnostic(`1000 WS conversations: ${chunksTotal} chunks in ${Math.round(ms)} ms = ${Math.round(chunksTotal / (ms / 1000))} chunks/s; p99 gap between chunks ${p99.toFixed(1)} ms (5 ms scripted delay; server and clients share this process)`);
      const rows = server.app.ctx.db.prepare(`SELECT count(*) AS n FROM messages WHERE role = 'assistant' AND incomplete = 0`).get() as { n: number };
      assert.equal(rows.n, N, 'every reply stored complete');
    } finally {
      for (const s of sockets) s.terminate();
      await server.stop();
    }
  });
});
