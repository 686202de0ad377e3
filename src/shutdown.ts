import { ApiError } from './errors.js';
import type { Logger } from './logger.js';
import type { HttpServer } from './server/http-server.js';
import type { WsServer } from './server/ws-server.js';
import type { LocalActors } from './contracts/actor-directory.js';
import { AGENT_ACTOR, type AgentTurns } from './contracts/agent-messages.js';

export interface ShutdownParts {
  http: HttpServer;
  ws: WsServer;
  actors: LocalActors;
  log: Logger;
  graceMs: number;
  /** Writes what is still queued (chat batches, audit rows) while the database is open. */
  flush(): Promise<void> | void;
  /** Stops actors and timers and closes the database: nothing may write after this. */
  close(): void;
}

/**
 * Graceful shutdown, in the order that loses nothing: stop accepting; abort the chat turns; await
 * their final writes (bounded by the grace period): each stores its partial reply as incomplete
 * and writes its stream's final frame; let other requests finish (same bound) and answer what is
 * left (a final event on a stream, a 503 on a request); close every socket with a close frame;
 * then flush; then close SQLite.
 */
export async function shutDown(p: ShutdownParts): Promise<void> {
  const until = Date.now() + p.graceMs;
  const left = () => Math.max(0, until - Date.now());
  p.http.stopAccepting();
  p.ws.stopAccepting();
  const reason = new ApiError('SERVICE_UNAVAILABLE', 'The server is shutting down; the partial reply is stored as incomplete', { reason: 'shutdown' });
  const abortTurns = async () => {
    const turns = p.actors.behaviours<AgentTurns>(AGENT_ACTOR).map((b) => b.abortAll(reason, true));
    if (!turns.length) return;
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      Promise.all(turns).then(() => true),
      new Promise<false>((r) => (timer = setTimeout(() => r(false), left()))),
    ]);
    clearTimeout(timer);
    if (!ended) p.log.warn({ graceMs: p.graceMs }, 'shutdown: some chat turns did not end within the grace period');
  };
  await abortTurns();
  await p.http.drain(left());
  // An agent spawned by a request that was already on its way has turns of its own: end them too.
  await abortTurns();
  p.ws.closeAll();
  await p.flush();
  p.close();
}
