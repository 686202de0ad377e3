import http from 'node:http';
import { Server } from 'socket.io';
import { announce, JwtVerifier, onSignals, paceChunks, peerEnv, PeerStore, type ChatStreamRequest, type Claims } from './common.js';

/**
 * Socket.IO (the stack most agent servers use) doing the same chat work: the same JWT checked
 * at the handshake with jose, the turn persisted in SQLite, the same chunks at the same pace,
 * emitted as `chat_chunk` events over the websocket transport.
 */
const env = peerEnv();
if (!env.dataDir) throw new Error('BENCH_DATA_DIR is required');
const jwt = await JwtVerifier.create(env.publicJwk);
const store = new PeerStore(env.dataDir);

const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"healthy"}');
    return;
  }
  if (!res.headersSent && !req.url?.startsWith('/socket.io')) res.writeHead(404).end();
});
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
  announce('socketio', typeof addr === 'object' && addr ? addr.port : 0);
});
onSignals(() => void io.close());
