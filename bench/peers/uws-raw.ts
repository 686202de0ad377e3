import { randomUUID } from 'node:crypto';
import uWS, { assertNativeUws } from '../../src/server/uws.js';
import { announce, chunkFrame, doneFrame, onSignals, paceChunks, peerEnv, sseChunk, sseDone, type ChatStreamRequest } from './common.js';

/**
 * The ceiling on this box: raw uWebSockets.js answering from memory. No JWT check, no SQLite:
 * the same bytes on the wire as the project, with nothing behind them.
 */
assertNativeUws();
const env = peerEnv();
const HEALTH = '{"status":"healthy"}';

interface WsData { cancel?: () => void }

const app = uWS.App();
app.get('/health', (res) => {
  res.cork(() => res.writeHeader('Content-Type', 'application/json').end(HEALTH));
});
app.get('/v1/deployments/:nft', (res) => {
  res.cork(() => res.writeHeader('Content-Type', 'application/json').end(env.deploymentJson));
});
app.post('/v1/agents/:nft/chat', (res) => {
  let aborted = false;
  let cancel: (() => void) | undefined;
  res.onAborted(() => {
    aborted = true;
    cancel?.();
  });
  // The body is read (and ignored): the reply is the same script for every message.
  res.onData((_chunk, last) => {
    if (!last || aborted) return;
    const id = randomUUID();
    res.cork(() => res.writeStatus('200 OK').writeHeader('Content-Type', 'text/event-stream').writeHeader('Cache-Control', 'no-cache'));
    cancel = paceChunks(
      env.chunks,
      env.delayMs,
      (content) => {
        if (aborted) return false;
        res.cork(() => res.write(sseChunk(content)));
      },
      (_reply, completed) => {
        if (aborted || !completed) return;
        res.cork(() => res.end(sseDone(id, env.chunks.length)));
      },
    );
  });
});
app.ws<WsData>('/ws', {
  idleTimeout: 120,
  maxBackpressure: 1024 * 1024,
  message: (ws, message) => {
    let req: ChatStreamRequest;
    try {
      req = JSON.parse(Buffer.from(message).toString('utf8')) as ChatStreamRequest;
    } catch {
      return;
    }
    if (req.type !== 'chat_stream') return;
    const data = ws.getUserData();
    const id = req.conversation_id ?? randomUUID();
    let open = true;
    data.cancel = paceChunks(
      env.chunks,
      env.delayMs,
      (content) => {
        if (!open) return false;
        ws.send(chunkFrame(id, content), false, false);
      },
      (_reply, completed) => {
        if (completed && open) ws.send(doneFrame(id, env.chunks.length), false, false);
      },
    );
    const prev = data.cancel;
    data.cancel = () => {
      open = false;
      prev();
    };
  },
  close: (ws) => ws.getUserData().cancel?.(),
});
// Set by the listen callback (uWS calls it synchronously).
let listenSocket: unknown;
app.listen('127.0.0.1', env.port, (token) => {
  if (!token) {
    console.error('uws-raw: cannot listen');
    process.exit(1);
  }
  listenSocket = token;
  announce('uws-raw', uWS.us_socket_local_port(token));
});
onSignals(() => {
  if (listenSocket) uWS.us_listen_socket_close(listenSocket as never);
});
