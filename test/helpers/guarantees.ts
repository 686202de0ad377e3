import { randomBytes, randomUUID } from 'node:crypto';
import type { TestServer } from './server.js';
import type { WsMessageHandler } from '../../src/server/ws-server.js';

/**
 * A real access token for a real (active) session row, without going through wallet sign-in:
 * the guarantees tests exercise the pipeline, not the sign-in flow.
 */
export async function sessionToken(server: TestServer, wallet: string, nft = '1'): Promise<{ token: string; sid: string }> {
  const sid = randomUUID();
  const now = Date.now();
  server.app.ctx.db
    .prepare('INSERT INTO sessions (id, wallet, nft_token_id, refresh_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run(sid, wallet, nft, randomBytes(32).toString('hex'), now, now + 3600_000);
  const { token } = await server.app.ctx.tokens.issue({ sub: wallet, nft, sid });
  return { token, sid };
}

/** Adds a WS message handler to a running server (test-only message types). */
export function addWsHandler(server: TestServer, type: string, handler: WsMessageHandler): void {
  (server.app.ws as unknown as { deps: { handlers: Record<string, WsMessageHandler> } }).deps.handlers[type] = handler;
}

/** Waits until the current fixed rate-limit minute has at least `ms` left, so a test stays in one window. */
export async function awayFromMinuteBoundary(ms = 5000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < ms) await new Promise((r) => setTimeout(r, left + 50));
}

export const WALLET_A = '0x' + 'a1'.repeat(20);
export const WALLET_B = '0x' + 'b2'.repeat(20);
