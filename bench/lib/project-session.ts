import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Wallet } from 'ethers';
import WebSocket from 'ws';
import { openDatabase } from '../../src/db/database.js';
import { TokenService, TOKEN_ISSUER, SIGNING_KEY_FILE } from '../../src/auth/tokens.js';
import { CLI, type Target } from './servers.js';
import { sleep } from './proc.js';

/** What the harness needs to drive the project: a signed-in wallet's token for one NFT. */
export interface Session {
  token: string;
  wallet: string;
  nft: string;
}

/** A step the project cannot do yet: the scenario reports "n/a (endpoint missing)". */
export class EndpointMissing extends Error {
  constructor(readonly endpoint: string) {
    super(`endpoint missing: ${endpoint}`);
  }
}

export interface JsonReply {
  status: number;
  body: any;
  text: string;
}

export async function call(base: string, method: string, p: string, body?: unknown, token?: string): Promise<JsonReply> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

/** The router's answer for a path no route serves (as opposed to a 404 about a resource). */
export function routeMissing(r: JsonReply): boolean {
  return r.status === 404 && typeof r.body?.error?.message === 'string' && r.body.error.message.startsWith('No route for');
}

/** Calls and throws EndpointMissing when the route does not exist, Error for any other failure. */
export async function callExpect(base: string, method: string, p: string, ok: number[], body?: unknown, token?: string): Promise<JsonReply> {
  const r = await call(base, method, p, body, token);
  if (routeMissing(r)) throw new EndpointMissing(`${method} ${p.replace(/\/\d+(?=\/|$)/, '/{nft}')}`);
  if (!ok.includes(r.status)) throw new Error(`${method} ${p} answered ${r.status}: ${r.text.slice(0, 300)}`);
  return r;
}

/**
 * Makes `wallet` the owner of `nft` in the registry: `panthers nft assign` when the CLI has it,
 * else a row in nft_owners written directly (the table the registry verifier reads).
 */
export function assignNft(dataDir: string, nft: string, address: string): 'cli' | 'sql' {
  const r = spawnSync(process.execPath, [CLI, 'nft', 'assign', nft, address], {
    env: { ...process.env, PANTHERS_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    encoding: 'utf8',
    timeout: 15_000,
  });
  if (r.status === 0) return 'cli';
  const db = openDatabase(dataDir);
  try {
    db.prepare(
      'INSERT INTO nft_owners (nft_token_id, owner, updated_at) VALUES (?, ?, ?) ON CONFLICT (nft_token_id) DO UPDATE SET owner = excluded.owner, updated_at = excluded.updated_at',
    ).run(nft, address.toLowerCase(), Date.now());
  } finally {
    db.close();
  }
  return 'sql';
}

/** Wallet sign-in: challenge, EIP-191 personal_sign with ethers, verify. */
export async function signIn(target: Target, dataDir: string, nft: string, wallet = Wallet.createRandom()): Promise<Session> {
  assignNft(dataDir, nft, wallet.address);
  const ch = await callExpect(target.url, 'POST', '/v1/auth/challenge', [200, 201], { wallet_address: wallet.address, nft_token_id: nft });
  const signature = await wallet.signMessage(ch.body.message as string);
  const v = await callExpect(target.url, 'POST', '/v1/auth/verify', [200, 201], {
    wallet_address: wallet.address, nft_token_id: nft, signature, message: ch.body.message,
  });
  return { token: v.body.access_token as string, wallet: wallet.address, nft };
}

/** POST /v1/deployments (local) unless one runs already, then waits until it is running. */
export async function ensureDeployed(target: Target, s: Session, timeoutMs = 20_000): Promise<JsonReply> {
  const first = await call(target.url, 'GET', `/v1/deployments/${s.nft}`, undefined, s.token);
  if (routeMissing(first)) throw new EndpointMissing('GET /v1/deployments/{nft}');
  if (first.status !== 200 || !['running', 'deploying', 'pending'].includes(first.body?.status)) {
    await callExpect(target.url, 'POST', '/v1/deployments', [200, 201, 202], { nft_token_id: s.nft, provider: 'local' }, s.token);
  }
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await call(target.url, 'GET', `/v1/deployments/${s.nft}`, undefined, s.token);
    if (r.status === 200 && r.body?.status === 'running') return r;
    if (r.status === 200 && r.body?.status === 'failed') throw new Error(`deployment failed: ${r.text.slice(0, 300)}`);
    if (Date.now() > until) throw new Error(`deployment not running after ${timeoutMs} ms: ${r.status} ${r.text.slice(0, 300)}`);
    await sleep(50);
  }
}

/** A token of the same kind the project issues, signed with the key in its data dir (for the peers). */
export async function mintToken(dataDir: string, nft: string, wallet: string): Promise<string> {
  const tokens = await TokenService.create(dataDir, TOKEN_ISSUER);
  return (await tokens.issue({ sub: wallet, nft, sid: 'bench-session' })).token;
}

/** Writes the project's public JWK where the peers read it. */
export function writePublicJwk(dataDir: string, file: string): void {
  const stored = JSON.parse(fs.readFileSync(path.join(dataDir, SIGNING_KEY_FILE), 'utf8')) as { publicJwk: unknown };
  fs.writeFileSync(file, JSON.stringify(stored.publicJwk));
}

export interface TurnCapture {
  chunks: string[];
  /** ms from sending the request to the first chunk */
  firstChunkMs: number;
  totalMs: number;
}

/** One chat turn over /ws, collecting the chunk contents (used to give the peers the same reply). */
export function wsChatTurn(base: string, token: string, nft: string, message: string, timeoutMs = 30_000): Promise<TurnCapture> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`);
    const chunks: string[] = [];
    let t0 = 0;
    let first = NaN;
    const timer = setTimeout(() => finish(new Error(`chat turn over /ws did not finish in ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error, v?: TurnCapture) => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      if (err) reject(err);
      else resolve(v!);
    };
    ws.on('unexpected-response', (_req, res) => finish(res.statusCode === 404 ? new EndpointMissing('GET /ws') : new Error(`/ws upgrade refused: ${res.statusCode}`)));
    ws.on('error', (e) => finish(e));
    ws.on('open', () => {
      t0 = performance.now();
      ws.send(JSON.stringify({ type: 'chat_stream', nft_token_id: nft, message }));
    });
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { type: string; content?: string; done?: boolean; error?: { code: string; message: string } };
      if (f.type === 'error') {
        if (f.error?.code === 'INVALID_FIELD' && /Unknown message type/.test(f.error.message)) return finish(new EndpointMissing('WS chat_stream'));
        return finish(new Error(`chat_stream answered an error: ${JSON.stringify(f.error)}`));
      }
      if (f.type !== 'chat_chunk') return;
      if (f.done) return finish(undefined, { chunks, firstChunkMs: first, totalMs: performance.now() - t0 });
      if (chunks.length === 0) first = performance.now() - t0;
      chunks.push(f.content ?? '');
    });
  });
}
