import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { startFakeAkash, type FakeAkash } from './fakes/akash-api.js';
import { startFakeSecretVm, type FakeSecretVm } from './fakes/secretvm-api.js';
import { request, spawnCli, tempDir, waitFor, type ServerProcess } from './helpers/server.js';
import { openWs } from './helpers/ws.js';
import { newEvmWallet } from './helpers/wallets.js';
import { caRequest, testTls } from './helpers/tls.js';

/**
 * The remote path end to end, through real processes: the orchestrator (`panthers serve`),
 * the provider fakes speaking the documented APIs, and the agent they start from what they
 * were sent (as the image runs it) behind a proxy like the provider's ingress. A user signs
 * in, deploys, watches progress over WS, sees health from the real agent, exchanges the session
 * for an agent-scoped token (POST /v1/agents/{nft}/token), chats with the agent at endpoint_url
 * with it (plain, SSE-streamed, WS-streamed), and stops it (the process ends).
 */

const OPERATOR_KEY = 'sk-operator-OPENAI-key-0042';

interface Harness {
  server: ServerProcess;
  akash: FakeAkash;
  svm: FakeSecretVm;
  ownersFile: string;
  ca: string;
  close(): Promise<void>;
}

async function harness(env: Record<string, string> = {}): Promise<Harness> {
  const tls = testTls();
  // Test-only, not from the deploy spec: a loaded shared CI machine must not make the agents
  // shed load (503) instead of answering what is tested.
  const agentEnv = { PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '5000' };
  const akash = await startFakeAkash({ runAgents: { env: agentEnv } });
  const svm = await startFakeSecretVm({ runAgents: { tls, env: agentEnv } });
  const dir = tempDir();
  const ownersFile = path.join(dir, 'owners.json');
  fs.writeFileSync(ownersFile, '{}');
  const server = await spawnCli(['serve', '--port', '0', '--data-dir', path.join(dir, 'data')], {
    // The orchestrator trusts the test CA the way an operator adds one: NODE_EXTRA_CA_CERTS.
    NODE_EXTRA_CA_CERTS: tls.caFile,
    PANTHERS_OWNERS_FILE: ownersFile,
    PANTHERS_RATE_LIMITS: 'off',
    PANTHERS_SCRIPTED_DELAY_MS: '5',
    PANTHERS_HEALTH_INTERVAL_MS: '100',
    PANTHERS_OPENAI_API_KEY: OPERATOR_KEY,
    PANTHERS_AKASH_API_URL: akash.url, PANTHERS_AKASH_API_KEY: 'test-akash-key', PANTHERS_AKASH_POLL_MS: '30',
    PANTHERS_SECRETVM_API_URL: svm.url, PANTHERS_SECRETVM_API_KEY: 'test-secretvm-key', PANTHERS_SECRETVM_POLL_MS: '30',
    PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true',
    PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '5000',
    ...env,
  });
  return {
    server, akash, svm, ownersFile, ca: tls.ca,
    async close() {
      server.child.kill('SIGTERM');
      await server.exited;
      await akash.close();
      await svm.close();
    },
  };
}

async function signIn(h: Harness, nft: string): Promise<{ token: string; wallet: string }> {
  const wallet = newEvmWallet();
  const owners = JSON.parse(fs.readFileSync(h.ownersFile, 'utf8'));
  owners[nft] = wallet.address;
  fs.writeFileSync(h.ownersFile, JSON.stringify(owners));
  const ch = await request(h.server.url, 'POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address, nft_token_id: nft } });
  assert.equal(ch.status, 200, ch.text);
  const vr = await request(h.server.url, 'POST', '/v1/auth/verify', {
    body: { wallet_address: wallet.address, nft_token_id: nft, signature: await wallet.sign(ch.body.message), message: ch.body.message },
  });
  assert.equal(vr.status, 200, vr.text);
  return { token: vr.body.access_token, wallet: wallet.address };
}

/** SSE `data:` events of a streamed chat answer, with the time of the first chunk. */
async function streamChat(endpoint: string, token: string, ca: string, message: string, conversationId?: string) {
  const events: any[] = [];
  let firstChunkMs: number | undefined;
  let buf = '';
  const res = await caRequest(`${endpoint}/chat`, {
    method: 'POST', ca, headers: { authorization: `Bearer ${token}` },
    body: { message, stream: true, ...(conversationId ? { conversation_id: conversationId } : {}) },
    onData(chunk, ms) {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of block.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const e = JSON.parse(line.slice(6));
          if (e.done === false && firstChunkMs === undefined) firstChunkMs = ms;
          events.push(e);
        }
      }
    },
  });
  return { status: res.status, events, firstChunkMs, text: res.text };
}

/** One WS-streamed turn with the remote agent, through its proxy. */
async function wsChat(endpoint: string, token: string, ca: string, message: string): Promise<string> {
  const ws = new WebSocket(`${endpoint.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`, { ca });
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    let text = '';
    const done = new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no chat_done over WS; got ${text}`)), 10_000);
      ws.on('message', (d) => {
        const f = JSON.parse(d.toString());
        if (f.type === 'chat_chunk' && f.done === false) text += f.content;
        if (f.done === true || f.type === 'error') {
          clearTimeout(t);
          if (f.type === 'error') reject(new Error(JSON.stringify(f)));
          else resolve(text);
        }
      });
    });
    ws.send(JSON.stringify({ type: 'chat_stream', message }));
    return await done;
  } finally {
    ws.close();
  }
}

async function deployAndUse(t: TestContext, h: Harness, provider: 'akash' | 'secret_vm', nft: string, systemPrompt: string, scheme: 'https' | 'http' = 'https') {
  const me = await signIn(h, nft);
  const ws = await openWs(h.server.url, me.token);
  ws.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: nft }));
  await ws.next((f) => f.type === 'subscribed');

  const started = performance.now();
  const created = await request(h.server.url, 'POST', '/v1/deployments', {
    token: me.token, body: { nft_token_id: nft, provider, agent: { name: `Panther ${nft}`, system_prompt: systemPrompt } },
  });
  assert.equal(created.status, 202, created.text);
  const running = await ws.next((f) => f.type === 'deployment_status' && (f.status === 'running' || f.status === 'failed'), 30_000);
  const deployToRunningMs = performance.now() - started;
  assert.equal(running.status, 'running', JSON.stringify(ws.frames));
  const progress = ws.frames.filter((f) => f.type === 'deployment_status').map((f) => f.progress);
  assert.ok(progress.length >= 3, 'progress was reported on the way');
  assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never goes back');
  const endpoint: string = running.endpoint_url;
  assert.match(endpoint, new RegExp(`^${scheme}://127\\.0\\.0\\.1:\\d+$`), scheme === 'https' ? 'TLS where the provider serves it' : 'plain HTTP where it does not');
  ws.ws.close();

  // health.ok from the real agent, through the proxy, checked by the orchestrator.
  const healthy = await waitFor(async () => {
    const d = await request(h.server.url, 'GET', `/v1/deployments/${nft}`, { token: me.token });
    return d.body?.health?.ok === true ? d.body : undefined;
  }, 15_000, 50);
  assert.equal(healthy.status, 'running');

  // The token for the remote host: exchanged for one only this NFT's agent accepts (the
  // orchestrator token never goes to a host run by the provider).
  const ex = await request(h.server.url, 'POST', `/v1/agents/${nft}/token`, { token: me.token });
  assert.equal(ex.status, 200, ex.text);
  assert.equal(ex.body.audience, `agent:${nft}`);
  assert.ok(ex.body.expires_in <= 900);
  assert.equal(ex.body.endpoint_url, endpoint);
  const agentToken: string = ex.body.access_token;
  assert.equal((await request(h.server.url, 'GET', `/v1/deployments/${nft}`, { token: agentToken })).status, 401, 'the orchestrator refuses an agent token');
  const withSession = await caRequest(`${endpoint}/chat`, { method: 'POST', ca: h.ca, headers: { authorization: `Bearer ${me.token}` }, body: { message: 'x' } });
  assert.equal(withSession.status, 401, `the agent refuses the orchestrator token: ${withSession.text}`);

  // Chat with the remote agent at endpoint_url.
  const plain = await caRequest(`${endpoint}/chat`, { method: 'POST', ca: h.ca, headers: { authorization: `Bearer ${agentToken}` }, body: { message: 'hello remote panther' } });
  assert.equal(plain.status, 200, plain.text);
  assert.ok(plain.body.response.length > 0);
  const conversation = plain.body.conversation_id as string;
  const streamed = await streamChat(endpoint, agentToken, h.ca, 'stream to me', conversation);
  assert.equal(streamed.status, 200, streamed.text);
  const last = streamed.events.at(-1);
  assert.equal(last.done, true);
  assert.equal(streamed.events.filter((e) => e.done === false).map((e) => e.content).join(''), last.response);
  assert.ok(streamed.events.length > 3, 'the answer came in pieces');
  const overWs = await wsChat(endpoint, agentToken, h.ca, 'and over a websocket');
  assert.ok(overWs.length > 0);
  t.diagnostic(`${provider} (${scheme}): deploy-to-running ${Math.round(deployToRunningMs)} ms; first streamed token ${streamed.firstChunkMs!.toFixed(1)} ms (remote agent through its proxy)`);

  const history = await caRequest(`${endpoint}/chat/history?conversation_id=${conversation}`, { ca: h.ca, headers: { authorization: `Bearer ${agentToken}` } });
  assert.equal(history.status, 200, history.text);
  return { me, agentToken, endpoint, conversation, messages: history.body.messages.length as number, deployToRunningMs, firstChunkMs: streamed.firstChunkMs! };
}

async function stopAndSeeItGone(h: Harness, nft: string, token: string, child: ChildProcess) {
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
  const del = await request(h.server.url, 'DELETE', `/v1/deployments/${nft}`, { token });
  assert.ok(del.status === 200 || del.status === 202, del.text);
  await waitFor(async () => (await request(h.server.url, 'GET', `/v1/deployments/${nft}`, { token })).body?.status === 'stopped', 10_000, 50);
  await exited;
}

test('remote e2e: Akash, sign in -> deploy -> WS progress -> health.ok -> chat (plain, SSE, WS) at endpoint_url -> restart keeps state -> stop ends the process', async (t) => {
  const h = await harness();
  try {
    // The fake provider offers TLS at its ingress (a certificate the orchestrator trusts).
    h.akash.opts.runAgents = { ...h.akash.opts.runAgents, tls: testTls() };
    const r = await deployAndUse(t, h, 'akash', '901', 'You are a remote panther.');
    const [dep] = h.akash.activeDeployments();
    assert.ok(dep?.agent?.container, 'the fake runs the agent');
    // What the agent process got is what the SDL said (plus the image ENV).
    assert.equal(dep.agent.container.env.PANTHERS_INGRESS, 'http');
    assert.equal(dep.agent.container.env.NODE_ENV, 'production');
    assert.equal(dep.agent.container.env.PANTHERS_AGENT_SYSTEM_PROMPT, 'You are a remote panther.');

    // The agent goes down (a crashed pod): the orchestrator's health checks see the ingress's
    // 502, then health again once it is back; its persistent volume kept the conversation.
    await dep.agent.stopContainer();
    const down = await waitFor(async () => {
      const d = await request(h.server.url, 'GET', '/v1/deployments/901', { token: r.me.token });
      return d.body?.health?.ok === false ? d.body.health : undefined;
    }, 15_000, 50);
    assert.match(down.message, /HTTP 502/);
    await dep.agent.start(dep.agent.env);
    await waitFor(async () => (await request(h.server.url, 'GET', '/v1/deployments/901', { token: r.me.token })).body?.health?.ok === true, 15_000, 50);
    const after = await caRequest(`${r.endpoint}/chat/history?conversation_id=${r.conversation}`, { ca: h.ca, headers: { authorization: `Bearer ${r.agentToken}` } });
    assert.equal(after.status, 200, after.text);
    assert.equal(after.body.messages.length, r.messages, 'conversations survive a restart of the agent');

    const child = dep.agent.container!.child;
    await stopAndSeeItGone(h, '901', r.me.token, child);
    assert.equal(dep.state, 'closed');
    assert.ok(h.akash.journal.some((j) => j.method === 'DELETE' && j.path === `/v1/deployments/${dep.dseq}`), 'the journal shows the close');
    const create = h.akash.journal.find((j) => j.method === 'POST' && j.path === '/v1/deployments');
    assert.equal(typeof (create?.body as any)?.data?.sdl, 'string', 'the journal keeps request bodies');
  } finally {
    await h.close();
  }
});

test('remote e2e: Akash whose ingress has no TLS: endpoint_url is http://, and the same path works over plain HTTP', async (t) => {
  const h = await harness();
  try {
    const r = await deployAndUse(t, h, 'akash', '905', 'Plain panther.', 'http');
    const [dep] = h.akash.activeDeployments();
    await stopAndSeeItGone(h, '905', r.me.token, dep!.agent!.container!.child);
  } finally {
    await h.close();
  }
});

test('remote e2e: SecretVM, the same path over Traefik-like TLS; a ${VAR} system prompt is not expanded into the operator key; VM restart keeps state', async (t) => {
  const h = await harness();
  try {
    const prompt = 'Repeat after me: ${PANTHERS_OPENAI_API_KEY} $PANTHERS_OPENAI_API_KEY';
    const r = await deployAndUse(t, h, 'secret_vm', '902', prompt);
    const [vm] = h.svm.liveVms();
    assert.ok(vm?.agent?.container, 'the fake runs the agent');
    assert.equal(vm.fsPersistence, true);
    assert.equal(vm.agent.container.env.PANTHERS_AGENT_SYSTEM_PROMPT, prompt, 'compose interpolation left the prompt as written');
    assert.equal(vm.agent.container.env.PANTHERS_OPENAI_API_KEY, OPERATOR_KEY, 'the key itself reached the agent through the .env');
    assert.ok(!vm.dockerCompose.includes(OPERATOR_KEY), 'the compose file holds no secret');
    assert.equal(vm.agent.container.env.PANTHERS_PUBLIC_URL, r.endpoint);

    // A VM stop/start through the API: fs_persistence keeps the data volume.
    const auth = { authorization: 'Bearer test-secretvm-key' };
    assert.equal((await fetch(`${h.svm.url}/api/vm/${vm.vmId}/stop`, { method: 'POST', headers: auth })).status, 200);
    assert.equal(vm.agent.ready(), false);
    assert.equal((await fetch(`${h.svm.url}/api/vm/${vm.vmId}/start`, { method: 'POST', headers: auth })).status, 200);
    const after = await caRequest(`${r.endpoint}/chat/history?conversation_id=${r.conversation}`, { ca: h.ca, headers: { authorization: `Bearer ${r.agentToken}` } });
    assert.equal(after.status, 200, after.text);
    assert.equal(after.body.messages.length, r.messages);

    const child = vm.agent.container!.child;
    await stopAndSeeItGone(h, '902', r.me.token, child);
    assert.equal(vm.status, 'terminated');
    assert.ok(h.svm.journal.some((j) => j.method === 'DELETE' && j.path === `/api/vm/${vm.vmId}/terminate`));
    const create = h.svm.journal.find((j) => j.path === '/api/vm/create');
    assert.equal((create?.body as any)?.fs_persistence, '1');
  } finally {
    await h.close();
  }
});

test('remote e2e: without PANTHERS_ALLOW_PRIVATE_ENDPOINTS a provider endpoint on loopback is refused and the resource is released', async () => {
  const h = await harness({ PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'false' });
  try {
    for (const [provider, nft] of [['akash', '903'], ['secret_vm', '904']] as const) {
      const me = await signIn(h, nft);
      const created = await request(h.server.url, 'POST', '/v1/deployments', { token: me.token, body: { nft_token_id: nft, provider } });
      assert.equal(created.status, 202, created.text);
      const failed = await waitFor(async () => {
        const d = await request(h.server.url, 'GET', `/v1/deployments/${nft}`, { token: me.token });
        return d.body?.status === 'failed' ? d.body : undefined;
      }, 20_000, 50);
      assert.match(failed.error, /resolves to a private or loopback address \(127\.0\.0\.1\).*PANTHERS_ALLOW_PRIVATE_ENDPOINTS/, JSON.stringify(failed));
      assert.equal(failed.endpoint_url, null);
    }
    const [dep] = [...h.akash.deployments.values()];
    assert.equal(dep!.state, 'closed', 'the Akash deployment was closed');
    await waitFor(() => !dep!.agent?.ready(), 5000);
    const [vm] = [...h.svm.vms.values()];
    assert.equal(vm!.status, 'terminated', 'the VM was terminated');
    await waitFor(() => !vm!.agent?.ready(), 5000);
  } finally {
    await h.close();
  }
});
