import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { CLI, request } from './server.js';
import type { EvmTestWallet } from './wallets.js';

const run = promisify(execFile);

/**
 * Event-loop lag limit for servers in tests that are not about load shedding: the CI machine is
 * shared, and a 500 ms lag there would make them answer 503 "overloaded" instead of what they test.
 */
export const LAG_MS = '5000';

export interface HttpSession {
  wallet: string;
  access_token: string;
  refresh_token: string;
  session_id: string;
}

/** Wallet sign-in over HTTP against any server URL: challenge, personal_sign, verify. */
export async function signInOver(url: string, wallet: EvmTestWallet, nft: string, headers: Record<string, string> = {}): Promise<HttpSession> {
  const ch = await request(url, 'POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address, nft_token_id: nft }, headers });
  if (ch.status !== 200) throw new Error(`challenge failed: ${ch.status} ${ch.text}`);
  const signature = await wallet.sign(ch.body.message);
  const vr = await request(url, 'POST', '/v1/auth/verify', {
    body: { wallet_address: wallet.address, nft_token_id: nft, signature, message: ch.body.message }, headers,
  });
  if (vr.status !== 200) throw new Error(`verify failed: ${vr.status} ${vr.text}`);
  return { wallet: wallet.address, ...vr.body };
}

/** `panthers nft assign` as an operator runs it (a separate process writing the same SQLite file). */
export async function cliAssign(dataDir: string, nft: string, owner: string): Promise<void> {
  await run(process.execPath, [CLI, 'nft', 'assign', nft, owner], { env: { ...process.env, PANTHERS_DATA_DIR: dataDir } });
}

/** Resolves with the close code and reason when the socket closes. */
export function closed(ws: WebSocket): Promise<{ code: number; reason: string; at: number }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve({ code: 1006, reason: '', at: performance.now() });
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString(), at: performance.now() }));
  });
}

export interface SseStream {
  /** every `data:` payload, parsed */
  events: any[];
  /** resolves when the server ends the stream */
  ended: Promise<{ at: number }>;
  abort(): void;
}

/** Opens a streaming chat (POST /chat with stream: true) and reads its events as they come. */
export async function openSse(url: string, path: string, token: string, body: object): Promise<SseStream> {
  const ac = new AbortController();
  const res = await fetch(url + path, {
    method: 'POST', signal: ac.signal,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ ...body, stream: true }),
  });
  if (res.status !== 200 || !res.body) throw new Error(`stream did not open: ${res.status} ${await res.text()}`);
  const events: any[] = [];
  const ended = (async () => {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of ev.split('\n')) {
            if (!line.startsWith('data: ')) continue;
            const data = line.slice(6);
            events.push(data.startsWith('{') ? JSON.parse(data) : data); // OpenAI streams end with [DONE]
          }
        }
      }
    } catch {
      // aborted by us
    }
    return { at: performance.now() };
  })();
  return { events, ended, abort: () => ac.abort() };
}
