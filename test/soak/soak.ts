import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startNats, startPostgres, type Nats, type Postgres } from '../helpers/engines.js';
import { prng } from '../helpers/prng.js';
import { tempDir } from '../helpers/server.js';
import { newEvmWallet, type EvmTestWallet } from '../helpers/wallets.js';
import { ApiClient, NoAnswer, WsClient, type ClientHooks } from './api-client.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { ServerProcess } from './server-process.js';
import { trustMarginMs } from '../../src/cluster/shard-leases.js';

/**
 * The crash soak: a mixed concurrent workload against a real `panthers serve` process, which is
 * killed with SIGKILL at a random moment each cycle and restarted on the same data dir. A
 * client-side ledger keeps only what the server ACKNOWLEDGED (a 2xx, a final SSE event, a done
 * WS frame); after each restart every acknowledged effect is checked through the API
 * (Jepsen's approach: the client's view is the truth the server promised).
 *
 * `cluster: true` (`npm run soak -- --cluster`): the same workload against three cluster nodes
 * on one real PostgreSQL and one nats-server (test/helpers/engines.ts) instead of one SQLite
 * process; every call goes to a node picked at random (so most are forwarded to the NFT's owner),
 * each cycle kill -9s one node picked at random and restarts it, and the checks read through
 * every node. Owners come from a shared PANTHERS_OWNERS_FILE.
 */
export interface SoakOptions {
  cycles: number;
  /** NFTs whose agents stay deployed and carry the chat workload */
  chatNfts?: number;
  /** NFTs that are deployed and stopped over and over */
  deployNfts?: number;
  /** workload time before the kill, ms: uniform in [min, max] */
  minRunMs?: number;
  maxRunMs?: number;
  /** /health must answer within this long after a restart */
  healthBoundMs?: number;
  /** recovered deploys must reach running (and stops stopped) within this long */
  settleBoundMs?: number;
  seed?: number;
  log?: (line: string) => void;
  /** three (`nodes`) cluster nodes on PostgreSQL + NATS instead of one SQLite process */
  cluster?: boolean;
  nodes?: number;
  /** cluster mode: lease TTL of the nodes (PANTHERS_CLUSTER_LEASE_TTL_MS) */
  leaseTtlMs?: number;
  /**
   * cluster mode: each cycle also SIGSTOPs one node mid-workload for a while around its trust
   * window (past it, and sometimes past the lease), then SIGCONTs it (default on)
   */
  pauses?: boolean;
}

export interface Violation {
  cycle: number;
  kind: string;
  detail: string;
}

export interface SoakReport {
  /** 'sqlite' (one process) or 'cluster of N nodes on PostgreSQL + NATS' */
  mode: string;
  cycles: number;
  /** distinct acknowledged writes (turns, refreshes, sign-ins, deploys, stops) checked after a crash */
  acknowledgedWritesChecked: number;
  /** all checks made (each acknowledged effect is checked again after every later crash) */
  checksMade: number;
  operations: Record<string, { ok: number; unanswered: number; refused: number }>;
  shutdown503s: number;
  restartToHealthMs: { p50: number; max: number; all: number[] };
  violations: Violation[];
  dataDir: string;
}

const ACTIVE = new Set(['pending', 'deploying', 'running', 'stopping']);
const MID = new Set(['pending', 'deploying', 'stopping']);
const MAX_TURNS_PER_CONVERSATION = 20;
/** The servers' refresh grace window (set in their env below): a lost refresh retried later is reuse. */
const REFRESH_GRACE_MS = 10_000;

interface Session {
  id: string;
  access: string;
  refresh: string;
  /** a refresh of this session was sent and not answered (the crash cut it) */
  refreshCut: boolean;
  /** when the refresh that was cut was sent (the server answers its retry only within the grace window) */
  refreshCutAt?: number;
}

interface Turn {
  user: string;
  reply: string;
}

interface Conversation {
  id: string;
  nft: string;
  turns: Turn[];
  /** every user message sent on it, answered or not */
  sent: Set<string>;
}

interface Nft {
  id: string;
  kind: 'chat' | 'deploy';
  wallet: EvmTestWallet;
  session: Session;
  /** what the last acknowledged deploy/stop promised; uncertain when a later one went unanswered */
  expect: 'running' | 'stopped' | undefined;
  uncertain: boolean;
  conversations: Conversation[];
}


const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every server a soak started, so a setup that throws leaves none running. */
const started = new Set<ServerProcess>();

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const engines = opts.cluster ? await Promise.all([startPostgres(), startNats()]).then(([pg, nats]) => ({ pg, nats })) : undefined;
  try {
    return await soak(opts, engines);
  } finally {
    for (const s of started) if (s.alive) await s.kill('SIGKILL');
    started.clear();
    engines?.nats.stop();
    engines?.pg.stop();
  }
}

async function soak(opts: SoakOptions, engines: { pg: Postgres; nats: Nats } | undefined): Promise<SoakReport> {
  const log = opts.log ?? (() => undefined);
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const minRun = opts.minRunMs ?? 300;
  const maxRun = opts.maxRunMs ?? 2000;
  const healthBound = opts.healthBoundMs ?? 10_000;
  const settleBound = opts.settleBoundMs ?? 20_000;
  const dataDir = tempDir('panthers-soak-');
  const clusterMode = engines !== undefined;
  const nodeCount = clusterMode ? Math.max(2, opts.nodes ?? 3) : 1;
  const leaseTtl = opts.leaseTtlMs ?? 1500;
  const pauses = opts.cluster === true && opts.pauses !== false;
  const ownersFile = path.join(dataDir, 'owners.json');
  // A cluster has one public origin (its balancer): sign-in messages name it on every node.
  let rr = 0;
  const balancer = clusterMode ? await TcpProxy.balancer(() => {
    const live = servers.filter((x) => x?.alive && x.url);
    return live.length ? Number(new URL(live[rr++ % live.length]!.url).port) : undefined;
  }) : undefined;
  if (balancer) balancer.recordSends = false;
  const clusterEnv = (i: number): Record<string, string> => engines ? {
    PANTHERS_DATABASE_URL: engines.pg.url,
    PANTHERS_NATS_URL: engines.nats.url,
    PANTHERS_NODE_ID: `soak-${i + 1}`,
    PANTHERS_DATA_DIR: path.join(dataDir, process.env.PANTHERS_CLUSTER_SHARE_DATA_DIR === '1' ? 'shared' : `node-${i + 1}`),
    PANTHERS_OWNERS_FILE: ownersFile,
    // 17c: the same secret on every node seals the shared signing keys (32+ characters).
    PANTHERS_CLUSTER_SECRET: 'test-cluster-secret-0123456789abcdef',
    PANTHERS_PUBLIC_URL: `http://${balancer!.address}`,
    PANTHERS_CLUSTER_LEASE_TTL_MS: String(leaseTtl),
    PANTHERS_CLUSTER_RENEW_MS: String(Math.max(50, Math.floor(leaseTtl / 5))),
  } : {};
  // One process, or a cluster's nodes (`srv` is the one killed this cycle).
  const servers: (ServerProcess | undefined)[] = new Array(nodeCount).fill(undefined);
  const env = {
    PANTHERS_DATA_DIR: dataDir,
    PANTHERS_RATE_LIMITS: 'off',
    PANTHERS_HEALTH_INTERVAL_MS: '200',
    PANTHERS_SCRIPTED_DELAY_MS: '2',
    PANTHERS_REFRESH_GRACE_MS: String(REFRESH_GRACE_MS),
  };
  log(`soak: seed ${seed}, data dir ${dataDir}${clusterMode ? `, cluster of ${nodeCount} nodes on PostgreSQL ${engines!.pg.url} and NATS ${engines!.nats.url}` : ''}`);

  const violations: Violation[] = [];
  let cycle = 0;
  const violation = (kind: string, detail: string) => {
    violations.push({ cycle, kind, detail });
    log(`  VIOLATION [cycle ${cycle}] ${kind}: ${detail.slice(0, 600)}`);
  };
  /** The servers' last error-level log lines: what a 5xx violation needs to be diagnosed. */
  const serverErrors = () => {
    const lines = servers.flatMap((x) => (x ? x.output().split('\n').filter((l) => /"level":(50|60)/.test(l)).slice(-2) : []));
    return lines.length ? `\n  server errors:\n  ${lines.join('\n  ').slice(0, 3000)}` : '';
  };
  let shutdown503s = 0;
  let serverAlive = false;
  const hooks: ClientHooks = {
    observe(what, status, code, text) {
      // (a final SSE or WS frame carries its error with a 200: the code tells)
      if (status >= 500 || code === 'INTERNAL_ERROR' || code === 'TIMEOUT') {
        if (code === 'SERVICE_UNAVAILABLE') shutdown503s++;
        else violation('5xx', `${what} -> ${status} ${text.slice(0, 300)}${serverErrors()}`);
      }
    },
  };
  const api = new ApiClient('', hooks);
  const ops: SoakReport['operations'] = {};
  const tally = (op: string, r: 'ok' | 'unanswered' | 'refused') => ((ops[op] ??= { ok: 0, unanswered: 0, refused: 0 })[r]++);
  /** Runs one operation; an unanswered one is fine unless it hung while the server was up. */
  const attempt = async <T>(op: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof NoAnswer)) throw e;
      tally(op, 'unanswered');
      if (e.hung && serverAlive) violation('hang', `${op}: ${e.message}`);
      return undefined;
    }
  };

  const checked = new Set<string>();
  let checksMade = 0;
  const check = (key: string) => {
    checked.add(key);
    checksMade++;
  };
  let seq = 0;
  const healthTimes: number[] = [];
  let srv: ServerProcess | undefined;
  const startOne = async (i: number) => {
    const s = await ServerProcess.start({ ...env, ...clusterEnv(i) }, healthBound, (why) => violation('unexpected exit', why));
    servers[i] = s;
    started.add(s);
    healthTimes.push(s.toHealthMs);
    return s;
  };
  const start = async (i = 0) => {
    srv = await startOne(i);
    serverAlive = true;
    api.bases = servers.filter((x) => x?.alive).map((x) => x!.url);
  };

  // --- setup: owners, sessions, chat agents deployed ----------------------------------------
  if (clusterMode) fs.writeFileSync(ownersFile, '{}');
  await start(0);
  // The other nodes of a cluster after the first (which migrates the database), together.
  await Promise.all(Array.from({ length: nodeCount - 1 }, (_, i) => startOne(i + 1)));
  api.bases = servers.map((x) => x!.url);
  const nfts: Nft[] = [];
  const chatCount = opts.chatNfts ?? 6;
  const deployCount = opts.deployNfts ?? 4;
  for (let i = 0; i < chatCount + deployCount; i++) {
    nfts.push({
      id: String(7000 + i), kind: i < chatCount ? 'chat' : 'deploy', wallet: newEvmWallet(),
      session: undefined as unknown as Session, expect: undefined, uncertain: false, conversations: [],
    });
  }
  if (clusterMode) {
    // Every node reads the same owners file (re-read when it changes).
    fs.writeFileSync(ownersFile + '.tmp', JSON.stringify(Object.fromEntries(nfts.map((n) => [n.id, n.wallet.address]))));
    fs.renameSync(ownersFile + '.tmp', ownersFile);
  } else {
    const db = new Database(path.join(dataDir, 'panthers.db'));
    try {
      const ins = db.prepare('INSERT OR REPLACE INTO nft_owners (nft_token_id, owner, updated_at) VALUES (?, ?, ?)');
      db.transaction(() => { for (const n of nfts) ins.run(n.id, n.wallet.address, Date.now()); })();
    } finally {
      db.close();
    }
  }
  await sleep(120); // the registry notices another connection's commit within 50 ms

  let signInRefusal = '';
  const signIn = async (n: Nft): Promise<boolean> => {
    const ch = await api.call('POST', '/v1/auth/challenge', { body: { wallet_address: n.wallet.address, nft_token_id: n.id } });
    if (ch.status !== 200) {
      signInRefusal = `challenge: ${ch.status} ${ch.text.slice(0, 300)}`;
      return false;
    }
    const vr = await api.call('POST', '/v1/auth/verify', {
      body: { wallet_address: n.wallet.address, nft_token_id: n.id, signature: await n.wallet.sign(ch.body.message), message: ch.body.message },
    });
    if (vr.status !== 200) {
      signInRefusal = `verify: ${vr.status} ${vr.text.slice(0, 300)}`;
      return false;
    }
    n.session = { id: vr.body.session_id, access: vr.body.access_token, refresh: vr.body.refresh_token, refreshCut: false };
    check(`signin:${n.session.id}`);
    return true;
  };
  for (const n of nfts) if (!(await signIn(n))) throw new Error(`setup: sign-in failed for NFT ${n.id}: ${signInRefusal}`);
  for (const n of nfts.filter((x) => x.kind === 'chat')) {
    const r = await api.call('POST', '/v1/deployments', { token: n.session.access, body: { nft_token_id: n.id, provider: 'local' } });
    if (r.status !== 202) throw new Error(`setup: deploy ${n.id} answered ${r.status} ${r.text}`);
    n.expect = 'running';
  }

  // Idempotency-Key on POST /chat (when the server documents it): turns carry a key, and a turn
  // the crash left unanswered is sent again with it after the restart; the retry must answer
  // the first attempt's result (or refuse), and the turn is then stored once.
  const doc = (await api.call('GET', '/v1/openapi.json')).body;
  const chatOp = doc?.paths?.['/v1/agents/{nft_token_id}/chat']?.post;
  const idempotent = ((chatOp?.parameters ?? []) as { $ref?: string; name?: string }[]).some((p) =>
    (p.$ref ? doc.components?.parameters?.[p.$ref.split('/').pop()!]?.name : p.name) === 'Idempotency-Key');
  log(`soak: Idempotency-Key on POST /chat ${idempotent ? 'documented: unanswered turns are retried with their key' : 'not documented: no retries'}`);
  interface Unanswered { n: Nft; conv: Conversation | undefined; mine: Conversation[]; message: string; key: string }
  let unanswered: Unanswered[] = [];

  // --- the workload -------------------------------------------------------------------------
  let stopping = false;
  const pause = () => sleep(Math.floor(rnd() * 15));

  const chatWorker = async (n: Nft, mine: Conversation[]) => {
    while (!stopping) {
      const roll = rnd();
      const open = mine.filter((c) => c.turns.length < MAX_TURNS_PER_CONVERSATION);
      const conv = open.length && rnd() < 0.85 ? pick(open) : undefined;
      const message = `soak ${n.id} m${++seq} ${rnd().toString(36).slice(2, 8)}`;
      conv?.sent.add(message);
      const record = (conversationId: string, reply: string) => {
        let c = conv;
        if (!c) {
          c = { id: conversationId, nft: n.id, turns: [], sent: new Set([message]) };
          mine.push(c);
          n.conversations.push(c);
        } else if (c.id !== conversationId) {
          violation('wrong conversation', `turn sent on ${c.id} was answered on ${conversationId}`);
          return;
        }
        c.turns.push({ user: message, reply });
      };
      const body = { message, ...(conv ? { conversation_id: conv.id } : {}) };
      const key = `soak-${seq}-${rnd().toString(36).slice(2, 10)}`;
      const headers: Record<string, string> = idempotent ? { 'Idempotency-Key': key } : {};
      if (roll < 0.35) {
        const r = await attempt('chat', () => api.call('POST', `/v1/agents/${n.id}/chat`, { token: n.session.access, body, headers }));
        if (r?.status === 200) {
          tally('chat', 'ok');
          record(r.body.conversation_id, r.body.response);
        } else if (r) tally('chat', 'refused');
        else if (idempotent) unanswered.push({ n, conv, mine, message, key });
      } else if (roll < 0.65) {
        const r = await attempt('chat (sse)', () => api.chatSse(n.id, n.session.access, body, headers));
        if (!r && idempotent) unanswered.push({ n, conv, mine, message, key });
        if (r?.final && !r.final.error && !r.final.incomplete) {
          tally('chat (sse)', 'ok');
          if (r.final.response !== r.chunks) violation('truncated', `SSE chunks (${r.chunks.length} chars) differ from the final response (${r.final.response.length} chars)`);
          record(r.final.conversation_id, r.final.response);
        } else if (r) tally('chat (sse)', 'refused');
      } else if (roll < 0.8) {
        const ok = await attempt('chat (ws)', async () => {
          const ws = await WsClient.open(api.base, n.session.access, hooks);
          try {
            ws.send({ type: 'chat_stream', nft_token_id: n.id, ...body });
            const last = await ws.next((f) => (f.type === 'chat_chunk' && f.done) || f.type === 'error');
            if (last.type === 'error' || last.error || last.incomplete) return false;
            const chunks = ws.frames.filter((f) => f.type === 'chat_chunk' && !f.done).map((f) => f.content).join('');
            if (chunks !== last.response) violation('truncated', `WS chunks (${chunks.length} chars) differ from the final response (${last.response.length} chars)`);
            record(last.conversation_id, last.response);
            return true;
          } finally {
            ws.close();
          }
        });
        if (ok !== undefined) tally('chat (ws)', ok ? 'ok' : 'refused');
      } else if (conv) {
        const r = await attempt('history', () => api.call('GET', `/v1/agents/${n.id}/chat/history?conversation_id=${conv.id}&limit=100`, { token: n.session.access }));
        if (r?.status === 200) {
          tally('history', 'ok');
          // A live read must already hold every acknowledged turn (read-your-writes).
          const users = (r.body.messages as { role: string; content: string }[]).filter((m) => m.role === 'user').map((m) => m.content);
          for (const t of conv.turns) if (!users.includes(t.user)) violation('lost (live read)', `conversation ${conv.id}: acknowledged "${t.user}" missing from a history read`);
        } else if (r) tally('history', 'refused');
      }
      await pause();
    }
  };

  const authWorker = async (n: Nft) => {
    while (!stopping) {
      const roll = rnd();
      if (roll < 0.75) {
        const s = n.session;
        s.refreshCut = true;
        s.refreshCutAt = Date.now();
        const r = await attempt('refresh', () => api.call('POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh } }));
        if (r) s.refreshCut = false;
        if (r?.status === 200) {
          tally('refresh', 'ok');
          s.refresh = r.body.refresh_token;
          s.access = r.body.access_token;
          check(`refresh:${s.refresh}`);
        } else if (r?.status === 503) {
          // A retryable refusal (shed by a node catching up after it stood still, one leaving, an
          // owner moving). The token kept is checked after the next kill: a 503 that rotated it
          // all the same shows up there.
          tally('refresh', 'refused');
        } else if (r) {
          tally('refresh', 'refused');
          violation('refresh refused', `NFT ${n.id} session ${s.id}: ${r.status} ${r.text.slice(0, 200)}`);
        }
      } else if (roll < 0.85) {
        const before = n.session;
        const ok = await attempt('sign-in', () => signIn(n));
        if (ok) tally('sign-in', 'ok');
        else if (ok === false) tally('sign-in', 'refused');
        // A sign-in cut by the crash leaves the previous session current (it must still work).
        if (ok === undefined) n.session = before;
      } else {
        const r = await attempt('session', () => api.call('GET', '/v1/auth/session', { token: n.session.access }));
        if (r?.status === 200) tally('session', 'ok');
        else if (r) tally('session', 'refused');
      }
      await sleep(5 + Math.floor(rnd() * 30));
    }
  };

  const deployWorker = async (n: Nft) => {
    while (!stopping) {
      const view = await attempt('deployment status', () => api.call('GET', `/v1/deployments/${n.id}`, { token: n.session.access }));
      if (!view) continue;
      tally('deployment status', view.status === 200 ? 'ok' : 'refused');
      const status: string | undefined = view.status === 200 ? view.body.status : undefined;
      if (status !== undefined && MID.has(status)) {
        await sleep(20);
        continue;
      }
      if (status === 'running') {
        n.uncertain = true;
        const r = await attempt('stop', () => api.call('DELETE', `/v1/deployments/${n.id}`, { token: n.session.access }));
        if (r?.status === 200) {
          tally('stop', 'ok');
          n.expect = 'stopped';
          n.uncertain = false;
          check(`stop:${n.id}:${++seq}`);
        } else if (r) tally('stop', 'refused');
      } else {
        n.uncertain = true;
        const r = await attempt('deploy', () => api.call('POST', '/v1/deployments', { token: n.session.access, body: { nft_token_id: n.id, provider: 'local' } }));
        if (r?.status === 202) {
          tally('deploy', 'ok');
          n.expect = 'running';
          n.uncertain = false;
          check(`deploy:${r.body.deployment_id}`);
        } else if (r) tally('deploy', 'refused');
      }
      await sleep(Math.floor(rnd() * 300));
    }
  };

  /** A deployment-channel subscriber per NFT: every frame must be well formed. */
  const subscriber = async (n: Nft) => {
    const ws = await attempt('ws subscribe', () => WsClient.open(api.base, n.session.access, hooks));
    if (!ws) return;
    ws.send({ type: 'subscribe', channel: 'deployment', nft_token_id: n.id });
    const sub = await attempt('ws subscribe', () => ws.next((f) => f.type === 'subscribed' || f.type === 'error'));
    if (sub?.type === 'subscribed') tally('ws subscribe', 'ok');
    else if (sub) tally('ws subscribe', 'refused');
    while (!stopping && !ws.closed) await sleep(50);
    for (const f of ws.frames) {
      if (f.type === 'deployment_status' && (f.nft_token_id !== n.id || (!ACTIVE.has(f.status) && !['stopped', 'failed'].includes(f.status)))) {
        violation('bad frame', `deployment subscriber of ${n.id} got ${JSON.stringify(f).slice(0, 300)}`);
      }
    }
    ws.close();
  };

  /** After a restart: each turn the crash left unanswered is sent again with its key. */
  const retryUnanswered = async () => {
    const todo = unanswered;
    unanswered = [];
    for (const u of todo) {
      const body = { message: u.message, ...(u.conv ? { conversation_id: u.conv.id } : {}) };
      const r = await api.call('POST', `/v1/agents/${u.n.id}/chat`, { token: u.n.session.access, body, headers: { 'Idempotency-Key': u.key } });
      if (r.status === 200) {
        tally('chat retry', 'ok');
        check(`retry:${u.key}`);
        let c = u.conv;
        if (!c) {
          c = { id: r.body.conversation_id, nft: u.n.id, turns: [], sent: new Set([u.message]) };
          u.mine.push(c);
          u.n.conversations.push(c);
        }
        c.turns.push({ user: u.message, reply: r.body.response });
      } else if (r.status === 409 && r.body?.error?.code === 'CONFLICT') {
        // "interrupted": the first attempt was cut mid-turn; what it stored stays as it is
        tally('chat retry', 'refused');
      } else {
        tally('chat retry', 'refused');
        if (r.status !== 404) violation('retry refused', `a retry with its Idempotency-Key got ${r.status} ${r.text.slice(0, 200)}`);
      }
    }
  };

  // --- checks after a restart ---------------------------------------------------------------
  const verify = async () => {
    for (const n of nfts) {
      // The latest acknowledged tokens still work.
      const s = n.session;
      const who = await api.call('GET', '/v1/auth/session', { token: s.access });
      check(`access:${s.access.slice(-16)}`);
      if (who.status !== 200) {
        violation(s.refreshCut ? 'signed out by a cut refresh' : 'access token rejected',
          `NFT ${n.id} session ${s.id}: GET /auth/session -> ${who.status} ${who.text.slice(0, 200)}`);
      }
      const r = await api.call('POST', '/v1/auth/refresh', { body: { refresh_token: s.refresh } });
      check(`refresh:${s.refresh}`);
      if (r.status === 200) {
        s.refresh = r.body.refresh_token;
        s.access = r.body.access_token;
        s.refreshCut = false;
      } else if (s.refreshCut && Date.now() - (s.refreshCutAt ?? 0) > REFRESH_GRACE_MS && /reuse detected/.test(r.text)) {
        // Retried after the grace window: the server must treat the old token as stolen (a
        // client retries a lost refresh at once; this one waited for a restart). Not a violation.
        tally('refresh retried past the grace window', 'refused');
        if (!(await signIn(n))) throw new Error(`cannot sign in again as NFT ${n.id}`);
      } else {
        violation(s.refreshCut ? 'signed out by a cut refresh' : 'refresh token rejected',
          `NFT ${n.id} session ${s.id}: the latest acknowledged refresh token got ${r.status} ${r.text.slice(0, 200)}` +
          (s.refreshCut ? ` (a refresh of this session was in flight at the kill, ${Date.now() - (s.refreshCutAt ?? 0)} ms ago)` : ''));
        // Sign in again so the soak can go on (the user would have to).
        if (!(await signIn(n))) throw new Error(`cannot sign in again as NFT ${n.id}`);
      }
    }

    // Deployments: at most one active per NFT; acknowledged deploys reach running, acknowledged stops stay stopped.
    /** The last deployment view read per NFT: a violation says why (its error, its message). */
    const lastView = new Map<string, { error?: unknown; message?: unknown; progress?: unknown }>();
    const why = (n: Nft) => {
      const v = lastView.get(n.id);
      return v ? ` (progress ${String(v.progress)}, error ${JSON.stringify(v.error ?? null)}, message ${JSON.stringify(v.message ?? null)})` : '';
    };
    const settle = async (n: Nft) => {
      const until = performance.now() + settleBound;
      for (;;) {
        const g = await api.call('GET', `/v1/deployments/${n.id}`, { token: n.session.access });
        const st: string | undefined = g.status === 200 ? g.body.status : undefined;
        if (st) lastView.set(n.id, g.body);
        if (st && !MID.has(st)) return st;
        if (performance.now() > until) return st ?? `HTTP ${g.status}`;
        await sleep(25);
      }
    };
    await Promise.all(nfts.map(async (n) => {
      const list = await api.call('GET', '/v1/deployments?limit=100', { token: n.session.access });
      const mine = (list.body?.deployments ?? []).filter((d: { nft_token_id: string; status: string }) => d.nft_token_id === n.id && ACTIVE.has(d.status));
      if (mine.length > 1) violation('two active deployments', `NFT ${n.id}: ${JSON.stringify(mine).slice(0, 400)}`);
      if (n.expect === undefined) return;
      const st = await settle(n);
      check(`deployment:${n.id}:${n.expect}`);
      if (n.uncertain) {
        if (MID.has(st) || st.startsWith('HTTP')) violation('deployment stuck', `NFT ${n.id} is ${st} ${settleBound} ms after the restart`);
        if (st === 'running' || st === 'stopped') n.expect = st;
        n.uncertain = false;
      } else if (st !== n.expect) {
        violation(n.expect === 'running' ? 'recovered deploy not running' : 'acknowledged stop undone', `NFT ${n.id}: expected ${n.expect}, is ${st}${why(n)}`);
        if (st === 'running' || st === 'stopped') n.expect = st;
      }
    }));

    // Chat: every acknowledged turn is there once, in order, whole.
    await Promise.all(nfts.map(async (n) => {
      for (const c of n.conversations) {
        const msgs: { role: string; content: string; incomplete: boolean }[] = [];
        for (let offset = 0; ; offset += 100) {
          const h = await api.call('GET', `/v1/agents/${n.id}/chat/history?conversation_id=${c.id}&limit=100&offset=${offset}`, { token: n.session.access });
          if (h.status !== 200) {
            violation('history unreadable', `conversation ${c.id}: ${h.status} ${h.text.slice(0, 200)}`);
            return;
          }
          msgs.push(...h.body.messages);
          if (!h.body.pagination.has_more) break;
        }
        const seen = new Map<string, number>();
        msgs.forEach((m, i) => {
          if (m.role !== 'user') return;
          if (seen.has(m.content)) violation('duplicated', `conversation ${c.id}: "${m.content}" stored twice`);
          else if (!c.sent.has(m.content)) violation('phantom', `conversation ${c.id}: "${m.content}" was never sent on it`);
          seen.set(m.content, i);
        });
        let last = -1;
        for (const t of c.turns) {
          check(`turn:${t.user}`);
          const at = seen.get(t.user);
          if (at === undefined) {
            violation('lost', `conversation ${c.id}: acknowledged turn "${t.user}" is gone`);
            continue;
          }
          if (at < last) violation('reordered', `conversation ${c.id}: "${t.user}" is stored before an earlier acknowledged turn`);
          last = at;
          const reply = msgs[at + 1];
          if (!reply || reply.role !== 'assistant') violation('lost', `conversation ${c.id}: the acknowledged reply to "${t.user}" is gone`);
          else if (reply.content !== t.reply || reply.incomplete) {
            violation('truncated', `conversation ${c.id}: reply to "${t.user}" stored as ${JSON.stringify(reply.content.slice(0, 80))} (${reply.content.length} chars, incomplete ${reply.incomplete}), acknowledged ${t.reply.length} chars`);
          }
        }
      }
    }));
  };

  // --- the cycles ---------------------------------------------------------------------------
  // The chat agents must be up before the first cycle.
  for (const n of nfts.filter((x) => x.kind === 'chat')) {
    const until = performance.now() + settleBound;
    while ((await api.call('GET', `/v1/deployments/${n.id}`, { token: n.session.access })).body?.status !== 'running') {
      if (performance.now() > until) throw new Error(`setup: NFT ${n.id} did not reach running`);
      await sleep(20);
    }
  }
  try {
    for (cycle = 1; cycle <= opts.cycles; cycle++) {
      stopping = false;
      const workers: Promise<void>[] = [];
      for (const n of nfts) {
        workers.push(authWorker(n), subscriber(n));
        if (n.kind === 'deploy') workers.push(deployWorker(n));
        else {
          // Two workers per chat agent, each with its own conversations (turns in one conversation are sequential).
          for (let w = 0; w < 2; w++) {
            const mine = n.conversations.filter((_, i) => i % 2 === w);
            workers.push(chatWorker(n, mine));
          }
        }
      }
      const runFor = minRun + Math.floor(rnd() * (maxRun - minRun));
      if (pauses) {
        // A node stands still longer than it trusts its leases (ttl - margin) and about as long as
        // the database keeps them: it must stop serving, and whatever it serves again (the same
        // leases renewed, or none) must not run beside what it stopped.
        const trust = leaseTtl - trustMarginMs(leaseTtl);
        const paused = servers[Math.floor(rnd() * nodeCount)];
        await sleep(Math.floor(runFor / 2));
        await paused?.pause(trust + 50 + Math.floor(rnd() * (leaseTtl - trust)));
        await sleep(runFor - Math.floor(runFor / 2));
      } else await sleep(runFor);
      const victim = Math.floor(rnd() * nodeCount);
      srv = servers[victim];
      // One process: nothing answers until the restart. A cluster: the others go on serving
      // (calls to the killed node are unanswered; a hang on a survivor is a finding).
      serverAlive = clusterMode;
      // One process: calls go on to the killed server's address (refused, retried) until the restart.
      if (clusterMode) api.bases = servers.filter((x, i) => i !== victim && x?.alive).map((x) => x!.url);
      await srv!.kill('SIGKILL');
      stopping = true;
      await Promise.all(workers);
      await start(victim);
      await retryUnanswered();
      await verify();
      log(`cycle ${cycle}/${opts.cycles}: killed after ${runFor} ms, /health in ${Math.round(srv!.toHealthMs)} ms, ${checked.size} acknowledged writes checked, ${violations.length} violations`);
    }
  } finally {
    serverAlive = false;
    for (const s of servers) {
      if (!s?.alive) continue;
      // Our own graceful stop: SIGTERM must end it cleanly.
      const exit = await s.kill('SIGTERM');
      if (exit.code !== 0) violation('unclean shutdown', `SIGTERM ended the server with code ${exit.code} signal ${exit.signal}`);
    }
    await balancer?.close();
  }

  const sorted = [...healthTimes].sort((a, b) => a - b);
  return {
    mode: clusterMode ? `cluster of ${nodeCount} nodes on PostgreSQL + NATS` : 'one process on SQLite',
    cycles: opts.cycles,
    acknowledgedWritesChecked: checked.size,
    checksMade,
    operations: ops,
    shutdown503s,
    restartToHealthMs: { p50: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0), max: Math.round(sorted[sorted.length - 1] ?? 0), all: healthTimes.map(Math.round) },
    violations,
    dataDir,
  };
}
