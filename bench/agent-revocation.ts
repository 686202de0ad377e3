/**
 * Revocation latency at a remote agent, at the default settings: an orchestrator whose `akash`
 * provider starts a real `panthers agent` process from the deploy spec (PANTHERS_AGENT_REVOCATION_POLL_MS
 * unset: 2000 ms), then, RUNS times: sign in, exchange for an agent token, use it at the agent, log
 * out, and poll the agent every 10 ms until it refuses the token. Prints the latencies.
 *
 *   npm run build && node dist/bench/agent-revocation.js [runs=10]
 */
import { startServer, request, sleep, waitFor } from '../test/helpers/server.js';
import { signIn, assignNft } from '../test/helpers/wallets.js';
import { ProcessProvider } from '../test/helpers/process-provider.js';
import { newEvmWallet } from '../test/helpers/wallets.js';

const runs = Number(process.argv[2] ?? 10);
const provider = new ProcessProvider('akash');
const server = await startServer({ PANTHERS_HEALTH_INTERVAL_MS: '60000', LOG_LEVEL: 'warn' }, { providers: { akash: provider } });
try {
  const wallet = newEvmWallet();
  const owner = await signIn(server, { nft: '1', wallet });
  await server.request('POST', '/v1/deployments', { token: owner.access_token, body: { nft_token_id: '1', provider: 'akash' } });
  const d = await waitFor(async () => {
    const g = await server.request('GET', '/v1/deployments/1', { token: owner.access_token });
    return g.body.status === 'running' ? g.body : undefined;
  }, 30_000);
  const endpoint = d.endpoint_url as string;
  const poll = provider.agents.values().next().value!.env.PANTHERS_AGENT_REVOCATION_POLL_MS ?? 'default (2000)';
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    assignNft(server, '1', wallet.address);
    const me = await signIn(server, { nft: '1', wallet });
    const t = await server.request('POST', '/v1/agents/1/token', { token: me.access_token });
    const ok = await request(endpoint, 'GET', '/v1/chat/history?conversation_id=none', { token: t.body.access_token });
    if (ok.status !== 404) throw new Error(`agent token not accepted: ${ok.status} ${ok.text}`);
    // Spread the logouts over the poll period, as real ones are.
    await sleep(Math.random() * 2000);
    const t0 = performance.now();
    await server.request('POST', '/v1/auth/logout', { token: me.access_token });
    for (;;) {
      const r = await request(endpoint, 'GET', '/v1/chat/history?conversation_id=none', { token: t.body.access_token });
      if (r.status === 401) break;
      if (performance.now() - t0 > 60_000) throw new Error('not refused within 60 s');
      await sleep(10);
    }
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const q = (p: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!);
  console.log(`agent revocation latency after logout (poll ${poll} ms, ${runs} runs): min ${Math.round(ms[0]!)} ms, p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${Math.round(ms[ms.length - 1]!)} ms`);
} finally {
  await provider.stopAll();
  await server.stop();
}
