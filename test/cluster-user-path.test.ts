import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { startPostgres, startNats } from './helpers/engines.js';
import { connect } from '@nats-io/transport-node';
import { startClusterNodes, waitForBalance, type Engines, type Cluster } from './helpers/cluster.js';
import { spawnCli, tempDir, request, waitFor, type ServerProcess, type HttpResult } from './helpers/server.js';
import { signInProcess } from './helpers/process-sign-in.js';
import { openSseChat } from './helpers/streams.js';
import { openWs } from './helpers/ws.js';
import { newEvmWallet, type EvmTestWallet } from './helpers/wallets.js';
import { shardOf } from '../src/cluster/shards.js';

/**
 * The user's path across cluster nodes (17f): a client must not see which node it talks to. One
 * script — sign in, deploy, watch, chat in every way the API offers, bad input, history, clear,
 * stop — runs once against a single `panthers serve` process (SQLite) and once against three real
 * cluster nodes (one PostgreSQL, one nats-server) with every step sent to a node chosen to NOT own
 * the NFT's shard (except the sign-in, which is not sharded). The two transcripts (status codes,
 * bodies, SSE events, WS frames, in order), with ids and times replaced by placeholders, must be
 * equal.
 */

interface Nodes {
  /** where the wallet signs in */
  signIn: string;
  /** where the deployment is asked for, and the HTTP chat is sent */
  deploy: string;
  /** where the WS watches the deployment and streams chat */
  watch: string;
}

type Transcript = { step: string; value: unknown }[];

/** Replaces what differs between runs (ids, times, tokens, counts of time) with placeholders. */
function normalize(x: unknown, names = new Map<string, string>()): unknown {
  const name = (kind: string, s: string) => {
    const k = `${kind}:${s}`;
    if (!names.has(k)) names.set(k, `<${kind}${[...names.keys()].filter((n) => n.startsWith(kind + ':')).length}>`);
    return names.get(k)!;
  };
  if (typeof x === 'string') {
    return x
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, (m) => name('uuid', m.toLowerCase()))
      .replace(/chatcmpl-[A-Za-z0-9_-]+/g, (m) => name('cmpl', m))
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>');
  }
  if (Array.isArray(x)) return x.map((v) => normalize(v, names));
  if (x && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) {
      if (/(^|_)(at|timestamp|created|uptime|updated)$|^(created|timestamp|request_id|latency_ms|duration_ms|elapsed_ms)$/.test(k) && (typeof v === 'number' || typeof v === 'string')) out[k] = '<time>';
      else if (k === 'id' && typeof v === 'number') out[k] = '<n>';
      // The first health check of a new deployment lands when it lands, in one process too.
      else if (k === 'health') out[k] = '<health>';
      else out[k] = normalize(v, names);
    }
    return out;
  }
  return x;
}

function http(r: HttpResult): unknown {
  return { status: r.status, body: r.body ?? r.text };
}

/** The user's whole path; each step's answer is recorded in order. */
async function userPath(nodes: Nodes, registry: string, nft: string, wallet: EvmTestWallet): Promise<Transcript> {
  const t: Transcript = [];
  const rec = (step: string, value: unknown) => {
    t.push({ step, value });
    if (process.env.USER_PATH_TRACE) appendFileSync(process.env.USER_PATH_TRACE, JSON.stringify({ step, value }) + '\n');
  };
  // Sign in: the challenge from one node, the signature verified by another (one public URL).
  await signInProcess(nodes.signIn, registry, nft, wallet); // writes the registry row; a first session
  const ch = await request(nodes.signIn, 'POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address, nft_token_id: nft } });
  rec('challenge', { status: ch.status, keys: Object.keys(ch.body).sort() });
  const vr = await request(nodes.watch, 'POST', '/v1/auth/verify', {
    body: { wallet_address: wallet.address, nft_token_id: nft, signature: await wallet.sign(ch.body.message), message: ch.body.message },
  });
  rec('verify', { status: vr.status, keys: Object.keys(vr.body).sort() });
  rec('verify replayed', http(await request(nodes.deploy, 'POST', '/v1/auth/verify', {
    body: { wallet_address: wallet.address, nft_token_id: nft, signature: await wallet.sign(ch.body.message), message: ch.body.message },
  })));
  // Refresh on one node, then on another with the new token (not mistaken for reuse), then the old one (reuse).
  const r1 = await request(nodes.deploy, 'POST', '/v1/auth/refresh', { body: { refresh_token: vr.body.refresh_token } });
  rec('refresh 1', { status: r1.status, keys: Object.keys(r1.body).sort() });
  const r2 = await request(nodes.watch, 'POST', '/v1/auth/refresh', { body: { refresh_token: r1.body.refresh_token } });
  rec('refresh 2 elsewhere', { status: r2.status, keys: Object.keys(r2.body ?? {}).sort(), body: r2.status === 200 ? undefined : r2.body });
  const r3 = await request(nodes.signIn, 'POST', '/v1/auth/refresh', { body: { refresh_token: r2.body.refresh_token } });
  rec('refresh 3 at the first node', { status: r3.status, keys: Object.keys(r3.body ?? {}).sort(), body: r3.status === 200 ? undefined : r3.body });
  const token = (r3.status === 200 ? r3.body : r2.status === 200 ? r2.body : vr.body).access_token as string;
  rec('session', http(await request(nodes.deploy, 'GET', '/v1/auth/session', { token })));
  const agent = `/v1/agents/${nft}`;
  const D = nodes.deploy;

  // Before anything runs, every node says the same: no agent.
  rec('chat before deploy', http(await request(D, 'POST', `${agent}/chat`, { token, body: { message: 'hi' } })));
  rec('openai before deploy', http(await request(D, 'POST', `${agent}/openai/v1/chat/completions`, { token, body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] } })));

  // Deploy through one node, watch it on another.
  const ws = await openWs(nodes.watch, token);
  try {
    ws.ws.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: nft }));
    rec('subscribed', await ws.next((f) => f.type === 'subscribed'));
    const dep = await request(D, 'POST', '/v1/deployments', { token, body: { nft_token_id: nft, provider: 'local' } });
    rec('deploy', http(dep));
    await ws.next((f) => f.type === 'deployment_status' && f.status === 'running', 20_000);
    // The statuses in order (a frame per transition; progress never goes back).
    rec('deployment frames', ws.frames.filter((f) => f.type === 'deployment_status').map((f) => [f.status, f.progress]));
    rec('get deployment', http(await request(D, 'GET', `/v1/deployments/${nft}`, { token })));

    // Chat, JSON.
    const first = await request(D, 'POST', `${agent}/chat`, { token, body: { message: 'Hello across nodes' } });
    rec('chat json', http(first));
    const cid = first.body.conversation_id as string;
    // Bad input: the same code, status and body from any node.
    rec('chat no body', http(await request(D, 'POST', `${agent}/chat`, { token, body: {} })));
    rec('chat empty message', http(await request(D, 'POST', `${agent}/chat`, { token, body: { message: '' } })));
    rec('chat bad conversation id', http(await request(D, 'POST', `${agent}/chat`, { token, body: { message: 'x', conversation_id: 'not a valid id!' } })));
    rec('chat unknown conversation', http(await request(D, 'POST', `${agent}/chat`, { token, body: { message: 'x', conversation_id: '00000000-0000-4000-8000-000000000000' } })));
    rec('chat no token', http(await request(D, 'POST', `${agent}/chat`, { body: { message: 'x' } })));
    rec('chat not json', http(await request(D, 'POST', `${agent}/chat`, { token, raw: '{"message":', headers: { 'content-type': 'application/json' } })));

    // Chat, SSE, continuing the conversation.
    const sse = await openSseChat(D, nft, token, { message: 'Stream it please', conversation_id: cid });
    await sse.ended;
    rec('chat sse', { status: sse.status, events: sse.events, error: sse.error ? String(sse.error) : undefined });

    // Chat over the socket on the watching node: every frame in order.
    const mark = ws.frames.length;
    ws.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, conversation_id: cid, message: 'And over the socket' }));
    await ws.next((f) => f.type === 'chat_chunk' && f.done === true, 20_000);
    await new Promise((r) => setTimeout(r, 150)); // nothing more may come
    rec('chat_stream frames', ws.frames.slice(mark));
    // Bad input over the socket.
    // (One at a time: the answers to two messages sent together on one socket come in the order
    // their checks finish, in one process as in a cluster; a store round trip reorders them.)
    for (const [what, m] of [['unknown conversation', { conversation_id: '00000000-0000-4000-8000-000000000000', message: 'x' }], ['empty message', { message: '' }]] as const) {
      const mark2 = ws.frames.length;
      ws.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, ...m }));
      await waitFor(() => ws.frames.length > mark2, 10_000);
      rec(`chat_stream ${what}`, ws.frames.slice(mark2));
    }

    // OpenAI-compatible: JSON and streamed.
    const oa = `${agent}/openai/v1/chat/completions`;
    rec('openai models', http(await request(D, 'GET', `${agent}/openai/v1/models`, { token })));
    rec('openai json', http(await request(D, 'POST', oa, { token, body: { model: 'm', messages: [{ role: 'user', content: 'An OpenAI client' }] } })));
    rec('openai bad', http(await request(D, 'POST', oa, { token, body: { model: 'm', messages: [{ role: 'assistant', content: 'hi' }] } })));
    const res = await fetch(D + oa, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'Stream like OpenAI' }] }) });
    rec('openai sse', { status: res.status, type: res.headers.get('content-type'), body: (await res.text()).split('\n\n').filter(Boolean).map((e) => (e.startsWith('data: {') ? JSON.parse(e.slice(6)) : e)) });

    // History, conversations, clear.
    rec('history', http(await request(D, 'GET', `${agent}/chat/history?conversation_id=${cid}`, { token })));
    rec('conversations', http(await request(D, 'GET', `${agent}/conversations`, { token })));
    rec('history bad id', http(await request(D, 'GET', `${agent}/chat/history?conversation_id=nope nope`, { token })));
    rec('clear', http(await request(D, 'POST', `${agent}/chat/clear`, { token, body: { conversation_id: cid } })));
    rec('history after clear', http(await request(D, 'GET', `${agent}/chat/history?conversation_id=${cid}`, { token })));
    rec('clear again', http(await request(D, 'POST', `${agent}/chat/clear`, { token, body: { conversation_id: cid } })));

    // Stop: the deployment ends, and no node answers for its agent any more.
    rec('stop', http(await request(D, 'DELETE', `/v1/deployments/${nft}`, { token })));
    await ws.next((f) => f.type === 'deployment_status' && f.status === 'stopped', 20_000);
    await waitFor(async () => (await request(D, 'GET', `/v1/deployments/${nft}`, { token })).body?.status === 'stopped', 10_000);
    rec('get after stop', http(await request(D, 'GET', `/v1/deployments/${nft}`, { token })));
    rec('chat after stop', http(await request(D, 'POST', `${agent}/chat`, { token, body: { message: 'still there?' } })));
    rec('chat_stream after stop', await (async () => {
      const m = ws.frames.length;
      ws.ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, message: 'still there?' }));
      await waitFor(() => ws.frames.slice(m).some((f) => f.type === 'error'), 10_000);
      return ws.frames.slice(m).filter((f) => f.type !== 'deployment_status');
    })());
  } finally {
    ws.ws.close();
  }
  return t;
}

const PUBLIC_URL = 'http://127.0.0.1:8080';
const NATS_AUTH = { user: 'panthers', pass: 'link-s3cret/+@' };
let engines: Engines;
let cluster: Cluster;
let single: ServerProcess;
let singleDir: string;

before(async () => {
  singleDir = tempDir('panthers-one-');
  // The NATS link is authenticated, as it must be in production (README "Cluster mode").
  const [pg, nats] = await Promise.all([startPostgres(), startNats(NATS_AUTH)]);
  engines = { pg, nats, stop: () => { nats.stop(); pg.stop(); } };
  [single] = await Promise.all([
    spawnCli(['serve'], { PORT: '0', HOST: '127.0.0.1', PANTHERS_DATA_DIR: singleDir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_SHUTDOWN_GRACE_MS: '3000', PANTHERS_PUBLIC_URL: PUBLIC_URL }),
  ]);
  // Behind one proxy, every node has the proxy's URL (sign-in messages, endpoint URLs), as in examples/cluster.
  cluster = await startClusterNodes(3, engines, { env: { PANTHERS_PUBLIC_URL: PUBLIC_URL } });
});
after(async () => {
  if (single && single.child.exitCode === null) {
    single.child.kill('SIGTERM');
    await single.exited;
  }
  await cluster?.stop().catch(() => {});
  engines?.stop();
});

test('the user path through nodes that do not own the NFT answers exactly what one process answers', { timeout: 120_000 }, async () => {
  const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
  // Placement settled (the nodes started together; shards move to where they hash until then).
  const owners = await waitForBalance(engines, cluster.nodes.map((n) => n.nodeId));
  // The NFT's shard is owned by A: B (deploy, HTTP chat) and C (WS watch and chat) are not owners.
  let nft = '';
  for (let i = 0; !nft; i++) if (owners.get(shardOf(`up${i}`)) === a.nodeId) nft = `up${i}`;
  const health = await Promise.all([b.health(), c.health()]);
  for (const h of health) assert.ok(!h.cluster.leases.some((l: { shard: number }) => l.shard === shardOf(nft)), 'B and C do not own the shard');
  const wallet = newEvmWallet();

  const one = normalize(await userPath({ signIn: single.url, deploy: single.url, watch: single.url }, singleDir, nft, wallet));
  const many = normalize(await userPath({ signIn: a.url, deploy: b.url, watch: c.url }, engines.pg.url, nft, wallet));
  const steps = (one as Transcript).map((s) => s.step);
  assert.deepEqual((many as Transcript).map((s) => s.step), steps);
  const differ: string[] = [];
  for (let i = 0; i < steps.length; i++) {
    try {
      assert.deepEqual((many as Transcript)[i], (one as Transcript)[i]);
    } catch (e) {
      differ.push(`step "${steps[i]}":\n${(e as Error).message}`);
    }
  }
  assert.equal(differ.length, 0, differ.join('\n\n'));
  // The turns really crossed nodes: B and C forwarded, A served.
  const [ha, hb, hc] = await Promise.all([a.health(), b.health(), c.health()]);
  assert.ok(ha.cluster.forwards.served > 0, 'A served forwarded asks');
  assert.ok(hb.cluster.forwards.asked > 0 && hc.cluster.forwards.asked > 0, 'B and C forwarded');
  assert.ok(ha.cluster.leases.some((l: { shard: number }) => l.shard === shardOf(nft)), 'A still owns the shard');
});

test('the cluster\'s NATS link refuses a client without its credentials (nobody else can publish forwarded asks)', async () => {
  const servers = [`nats://127.0.0.1:${engines.nats.port}`];
  await assert.rejects(connect({ servers, maxReconnectAttempts: 0, timeout: 2000 }), /Authorization Violation/);
  await assert.rejects(connect({ servers, user: NATS_AUTH.user, pass: 'wrong', maxReconnectAttempts: 0, timeout: 2000 }), /Authorization Violation/);
  // The nodes connected with the credentials from PANTHERS_NATS_URL (the client ignores them in a URL).
  for (const n of cluster.nodes) assert.equal((await n.health()).cluster.nats, 'connected');
});
