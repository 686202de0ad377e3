import uWS, { type HttpResponse, type TemplatedApp } from '../../src/server/uws.js';
import { announce, onSignals, paceChunks, sseChunk, sseDone, type ChatStreamRequest, type PeerEnv } from './common.js';

/**
 * Listens on 127.0.0.1 and announces the port (uWS calls the listen callback synchronously); on
 * SIGTERM/SIGINT closes the listen socket, then runs `close`, then exits.
 */
export function listenAndAnnounce(app: TemplatedApp, name: string, port: number, close?: () => void): void {
  let listenSocket: unknown;
  app.listen('127.0.0.1', port, (token) => {
    if (!token) {
      console.error(`${name}: cannot listen`);
      process.exit(1);
    }
    listenSocket = token;
    announce(name, uWS.us_socket_local_port(token));
  });
  onSignals(() => {
    if (listenSocket) uWS.us_listen_socket_close(listenSocket as never);
    close?.();
  });
}

/**
 * Streams the scripted chunks as SSE on a uWS response; `onEnd` sees the reply (to store it).
 * Returns the cancel function (for onAborted).
 */
export function streamSse(
  res: HttpResponse, env: Pick<PeerEnv, 'chunks' | 'delayMs'>, id: string, aborted: () => boolean, onEnd?: (reply: string, completed: boolean) => void,
): () => void {
  res.cork(() => res.writeStatus('200 OK').writeHeader('Content-Type', 'text/event-stream').writeHeader('Cache-Control', 'no-cache'));
  return paceChunks(
    env.chunks,
    env.delayMs,
    (content) => {
      if (aborted()) return false;
      res.cork(() => res.write(sseChunk(content)));
    },
    (reply, completed) => {
      onEnd?.(reply, completed);
      if (!aborted() && completed) res.cork(() => res.end(sseDone(id, env.chunks.length)));
    },
  );
}

/** A WS message as a chat_stream request; undefined for anything else. */
export function chatStreamOf(message: ArrayBuffer): ChatStreamRequest | undefined {
  try {
    const req = JSON.parse(Buffer.from(message).toString('utf8')) as ChatStreamRequest;
    return req.type === 'chat_stream' ? req : undefined;
  } catch {
    return undefined;
  }
}
