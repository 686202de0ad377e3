import http from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Server } from 'socket.io';
import {
  announce, bearer, deploymentBody, JwtVerifier, NOT_FOUND, onSignals, paceChunks, peerEnv, PeerStore, sseChunk, sseDone,
  UNAUTHORIZED, type ChatStreamRequest, type Claims,
} from './common.js';

/**
 * Express 5 + Socket.IO on one node:http server: the stack agent frameworks serve with (ElizaOS's
 * server is Express with Socket.IO beside it). The same work as the project and the other peers:
 * the same JWT verified with jose (an auth middleware on the routes, a handshake middleware on
 * the socket), the same SQLite row read, the chat turn persisted, the same chunks at the same pace
 * over SSE (POST /v1/agents/{nft}/chat) and as `chat_chunk` events (Socket.IO, websocket transport).
 */
const env = peerEnv();
if (!env.dataDir) throw new Error('BENCH_DATA_DIR is required');
const jwt = await JwtVerifier.create(env.publicJwk);
const store = new PeerStore(env.dataDir);

type Authed = Request & { claims?: Claims };

/** Bearer-token middleware, the way an Express app guards its routes. */
function requireAuth(req: Authed, res: Response, next: NextFunction): void {
  jwt.verify(bearer(req.headers.authorization)).then(
    (claims) => {
      req.claims = claims;
      next();
    },
    () => void res.status(401).type('application/json').send(UNAUTHORIZED),
  );
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.get('/health', (_req, res) => void res.json({ status: 'healthy' }));

app.get('/v1/deployments/:nft', requireAuth, (req: Authed, res) => {
  const row = store.deployment(String(req.params.nft));
  if (!row || row.wallet.toLowerCase() !== req.claims!.sub.toLowerCase()) {
    res.status(404).type('application/json').send(NOT_FOUND);
    return;
  }
  res.json(deploymentBody(row));
});

app.post('/v1/agents/:nft/chat', requireAuth, express.json({ limit: '64kb' }), (req: Authed, res) => {
  const body = (req.body ?? {}) as { message?: string; conversation_id?: string };
  const id = store.beginTurn(body.conversation_id, String(req.params.nft), req.claims!.sub, String(body.message ?? ''));
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  let open = true;
  const cancel = paceChunks(
    env.chunks,
    env.delayMs,
    (content) => {
      if (!open) return false;
      res.write(sseChunk(content));
    },
    (reply, completed) => {
      store.endTurn(id, reply, !completed);
      if (completed && open) res.end(sseDone(id, env.chunks.length));
    },
  );
  res.on('close', () => {
    open = false;
    cancel();
  });
});

const server = http.createServer(app);
const io = new Server(server, { transports: ['websocket'], serveClient: false, maxHttpBufferSize: 64 * 1024 });

io.use((socket, next) => {
  const token = String((socket.handshake.auth as { token?: string }).token ?? '');
  jwt.verify(token).then(
    (claims) => {
      socket.data.claims = claims;
      next();
    },
    () => next(new Error('UNAUTHORIZED')),
  );
});

io.on('connection', (socket) => {
  const claims = socket.data.claims as Claims;
  let cancel: (() => void) | undefined;
  socket.on('chat_stream', (msg: ChatStreamRequest) => {
    if (!msg?.nft_token_id) return;
    const id = store.beginTurn(msg.conversation_id, msg.nft_token_id, claims.sub, String(msg.message ?? ''));
    cancel = paceChunks(
      env.chunks,
      env.delayMs,
      (content) => {
        if (!socket.connected) return false;
        socket.emit('chat_chunk', { conversation_id: id, content, done: false });
      },
      (reply, completed) => {
        store.endTurn(id, reply, !completed);
        if (completed && socket.connected) socket.emit('chat_chunk', { conversation_id: id, content: '', done: true, tokens_used: env.chunks.length });
      },
    );
  });
  socket.on('disconnect', () => cancel?.());
});

server.listen(env.port, '127.0.0.1', () => {
  const addr = server.address();
  announce('express-socketio', typeof addr === 'object' && addr ? addr.port : 0);
});
onSignals(() => void io.close());
