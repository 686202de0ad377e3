import { randomUUID } from 'node:crypto';
import uWS, { assertNativeUws } from '../../src/server/uws.js';
import { chatStreamOf, listenAndAnnounce, streamSse } from './uws-peer.js';
import { AuditLog } from '../../src/guards/audit-log.js';
import { createLogger } from '../../src/logger.js';
import {
  bearer, chunkFrame, deploymentBody, doneFrame, JwtVerifier, NOT_FOUND, paceChunks, peerEnv,
  PeerStore, UNAUTHORIZED, type ChatStreamRequest, type Claims,
} from './common.js';

/**
 * The floor of the project's guarantees, hand-written on raw uWebSockets.js: what no framework
 * layer can remove. Every request and WS message is authenticated (the same JWT, verified with
 * jose and cached as the project caches it), its NFT's owner checked against the stored
 * deployment row, and written to the same hash-chained audit table by the project's own audit
 * writer thread; a chat turn's message is stored before its first chunk and its reply once
 * streamed, the writes of one event-loop turn in one commit (a group commit, as the project's
 * write batch does). What it leaves out (rate limits, quotas, metrics, request ids, security
 * headers, idempotency, actors, supervision) is what the project adds above this floor.
 */
assertNativeUws();
const env = peerEnv();
if (!env.dataDir) throw new Error('BENCH_DATA_DIR is required');
const jwt = await JwtVerifier.create(env.publicJwk);
const store = new PeerStore(env.dataDir);
const db = store.db;

// The audit chain as the project writes it: rows queued here, hashed and inserted in batches by
// its writer thread (src/guards/audit-log.ts), which also checkpoints the WAL.
const audit = new AuditLog({ db, log: createLogger({ level: 'silent' }) });
audit.start();
function record(claims: Claims | undefined, nft: string | undefined, method: string, route: string, status: number, started: number): void {
  audit.record({ ts: Date.now(), requestId: randomUUID(), wallet: claims?.sub, nft, method, route, status, ip: '127.0.0.1', durationMs: performance.now() - started });
}

/** A turn's writes queued in this event-loop turn, committed together at setImmediate (before any chunk is due). */
const pending: (() => void)[] = [];
const commit = db.transaction(() => {
  for (const w of pending) w();
});
function queue(write: () => void): void {
  if (pending.push(write) > 1) return;
  setImmediate(() => {
    commit.immediate();
    pending.length = 0;
  });
}

/** The stored deployment row per NFT, read once (the project caches its latest deployment too). */
const deployments = new Map<string, ReturnType<PeerStore['deployment']>>();
function deploymentOf(nft: string): ReturnType<PeerStore['deployment']> {
  if (!deployments.has(nft)) deployments.set(nft, store.deployment(nft));
  return deployments.get(nft);
}

/** The caller's claims when the token verifies and the wallet owns the NFT's deployment. */
async function authorize(token: string, nft: string): Promise<{ claims?: Claims; status: number }> {
  let claims: Claims;
  try {
    claims = await jwt.verify(token);
  } catch {
    return { status: 401 };
  }
  const dep = deploymentOf(nft);
  return dep && dep.wallet.toLowerCase() === claims.sub.toLowerCase() ? { claims, status: 200 } : { claims, status: 404 };
}

const app = uWS.App();
app.get('/health', (res) => {
  res.cork(() => res.writeHeader('Content-Type', 'application/json').end('{"status":"healthy"}'));
});
app.get('/v1/deployments/:nft', (res, req) => {
  const started = performance.now();
  const nft = req.getParameter(0) ?? '';
  const token = bearer(req.getHeader('authorization'));
  let aborted = false;
  res.onAborted(() => (aborted = true));
  void jwt.verify(token).then(
    (claims) => {
      const dep = deploymentOf(nft);
      const mine = dep !== undefined && dep.wallet.toLowerCase() === claims.sub.toLowerCase();
      record(claims, nft, 'GET', '/v1/deployments/:nft', mine ? 200 : 404, started);
      if (aborted) return;
      res.cork(() => res.writeStatus(mine ? '200 OK' : '404 Not Found').writeHeader('Content-Type', 'application/json').end(mine ? JSON.stringify(deploymentBody(dep!)) : NOT_FOUND));
    },
    () => {
      record(undefined, nft, 'GET', '/v1/deployments/:nft', 401, started);
      if (!aborted) res.cork(() => res.writeStatus('401 Unauthorized').writeHeader('Content-Type', 'application/json').end(UNAUTHORIZED));
    },
  );
});
app.post('/v1/agents/:nft/chat', (res, req) => {
  const started = performance.now();
  const nft = req.getParameter(0) ?? '';
  const token = bearer(req.getHeader('authorization'));
  let aborted = false;
  let cancel: (() => void) | undefined;
  res.onAborted(() => {
    aborted = true;
    cancel?.();
  });
  const parts: Buffer[] = [];
  res.onData((chunk, last) => {
    parts.push(Buffer.from(chunk.slice(0)));
    if (!last) return;
    void authorize(token, nft).then(({ claims, status }) => {
      record(claims, nft, 'POST', '/v1/agents/:nft/chat', status, started);
      if (aborted) return;
      if (status !== 200) {
        res.cork(() => res.writeStatus(status === 401 ? '401 Unauthorized' : '404 Not Found').writeHeader('Content-Type', 'application/json').end(status === 401 ? UNAUTHORIZED : NOT_FOUND));
        return;
      }
      let body: ChatStreamRequest;
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8')) as ChatStreamRequest;
      } catch {
        body = {};
      }
      const id = body.conversation_id ?? randomUUID();
      queue(() => store.beginTurn(body.conversation_id, nft, claims!.sub, String(body.message ?? '')));
      cancel = streamSse(res, env, id, () => aborted, (reply, completed) => queue(() => store.endTurn(id, reply, !completed)));
    });
  });
});

interface WsData { claims: Claims; cancel?: () => void; open: boolean }
app.ws<WsData>('/ws', {
  idleTimeout: 120,
  maxBackpressure: 1024 * 1024,
  upgrade: (res, req, context) => {
    const started = performance.now();
    const token = new URLSearchParams(req.getQuery() ?? '').get('token') ?? '';
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    let aborted = false;
    res.onAborted(() => (aborted = true));
    void jwt.verify(token).then(
      (claims) => {
        record(claims, claims.nft, 'GET', '/ws', 101, started);
        if (!aborted) res.cork(() => res.upgrade<WsData>({ claims, open: true }, key, protocol, extensions, context));
      },
      () => {
        record(undefined, undefined, 'GET', '/ws', 401, started);
        if (!aborted) res.cork(() => res.writeStatus('401 Unauthorized').writeHeader('Content-Type', 'application/json').end(UNAUTHORIZED));
      },
    );
  },
  message: (ws, message) => {
    const started = performance.now();
    const req = chatStreamOf(message);
    if (!req) return;
    const data = ws.getUserData();
    const nft = req.nft_token_id ?? data.claims.nft;
    // The socket's claims are checked again per message (the token may have expired since the
    // upgrade) and the NFT's owner looked up, as the project does.
    const dep = deploymentOf(nft);
    const mine = dep !== undefined && dep.wallet.toLowerCase() === data.claims.sub.toLowerCase() && data.claims.exp > Date.now() / 1000;
    record(data.claims, nft, 'WS', '/ws:chat_stream', mine ? 200 : 404, started);
    if (!mine || !data.open) return;
    const id = req.conversation_id ?? randomUUID();
    queue(() => store.beginTurn(req.conversation_id, nft, data.claims.sub, String(req.message ?? '')));
    data.cancel = paceChunks(
      env.chunks,
      env.delayMs,
      (content) => {
        if (!data.open) return false;
        ws.send(chunkFrame(id, content), false, false);
      },
      (reply, completed) => {
        queue(() => store.endTurn(id, reply, !completed));
        if (completed && data.open) ws.send(doneFrame(id, env.chunks.length), false, false);
      },
    );
  },
  close: (ws) => {
    const data = ws.getUserData();
    data.open = false;
    data.cancel?.();
  },
});

listenAndAnnounce(app, 'uws-sqlite', env.port, () => {
  if (pending.length) commit.immediate();
  audit.stop();
  db.close();
});
