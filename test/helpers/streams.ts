import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { request, waitFor } from './server.js';
import { newEvmWallet, type EvmTestWallet } from './wallets.js';

export { signInProcess } from './process-sign-in.js';


/** Deploys NFT `nft`'s agent on the local provider and waits until it runs. */
export async function deployLocalAt(url: string, token: string, nft: string, agent?: object): Promise<void> {
  const r = await request(url, 'POST', '/v1/deployments', { token, body: { nft_token_id: nft, provider: 'local', agent } });
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await request(url, 'GET', `/v1/deployments/${nft}`, { token })).body.status === 'running');
}

/** An SSE chat as a real client reads it: every `data:` payload, in order, as it arrives. */
export interface SseChat {
  status: number;
  events: any[];
  /** Resolves when the server ends the response (or the connection fails: then `error` is set). */
  ended: Promise<void>;
  error?: unknown;
}

export async function openSseChat(url: string, nft: string, token: string, body: object, headers: Record<string, string> = {}): Promise<SseChat> {
  const res = await fetch(`${url}/v1/agents/${nft}/chat`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers }, body: JSON.stringify({ ...body, stream: true }),
  });
  const out: SseChat = { status: res.status, events: [], ended: Promise.resolve() };
  if (!/^text\/event-stream/.test(res.headers.get('content-type') ?? '')) {
    out.events.push(await res.json());
    return out;
  }
  out.ended = (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of block.split('\n')) if (line.startsWith('data: ')) out.events.push(JSON.parse(line.slice(6)));
        }
      }
    } catch (e) {
      out.error = e;
    }
  })();
  return out;
}

/** Every message of a conversation, read from the data dir's database (the server may be gone). */
export function storedMessages(dataDir: string, conversationId: string): { role: string; content: string; incomplete: number }[] {
  const db = new Database(path.join(dataDir, 'panthers.db'), { readonly: true });
  try {
    return db.prepare('SELECT role, content, incomplete FROM messages WHERE conversation_id = ? ORDER BY id').all(conversationId) as never;
  } finally {
    db.close();
  }
}
