import { randomUUID } from 'node:crypto';
import uWS, { assertNativeUws } from '../../src/server/uws.js';
import { chatStreamOf, listenAndAnnounce, streamSse } from './uws-peer.js';
import { chunkFrame, doneFrame, paceChunks, peerEnv } from './common.js';

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
    cancel = streamSse(res, env, id, () => aborted);
  });
});
app.ws<WsData>('/ws', {
  idleTimeout: 120,
  maxBackpressure: 1024 * 1024,
  message: (ws, message) => {
    const req = chatStreamOf(message);
    if (!req) return;
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
listenAndAnnounce(app, 'uws-raw', env.port);
