import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import type Database from 'better-sqlite3';
import { openDatabase } from '../../src/db/database.js';
import { readChunksFile } from '../lib/chunks.js';
import { tokenClock } from '../../adapters/models/token-clock.js';

/**
 * What every peer shares: its settings from the environment the harness sets, the chunks to
 * stream and their pace, JWT verification with jose, and the SQLite work the project does.
 * Each peer does the same work as the project so the ratio measures the stack, not shortcuts.
 */
export interface PeerEnv {
  port: number;
  delayMs: number;
  chunks: string[];
  /** the project's public JWK (verifies the same tokens the project issues) */
  publicJwk: jose.JWK | undefined;
  /** data dir of the peer's own SQLite file (same schema as the project's) */
  dataDir: string | undefined;
  /** pre-serialized GET /v1/deployments/{nft} body (uws-raw answers it from memory) */
  deploymentJson: string;
}

export function peerEnv(): PeerEnv {
  const jwkFile = process.env.BENCH_JWK_FILE;
  const depFile = process.env.BENCH_DEPLOYMENT_FILE;
  return {
    port: Number(process.env.PORT ?? 0),
    delayMs: Number(process.env.BENCH_DELAY_MS ?? 50),
    chunks: readChunksFile(process.env.BENCH_CHUNKS_FILE),
    publicJwk: jwkFile ? (JSON.parse(fs.readFileSync(jwkFile, 'utf8')) as jose.JWK) : undefined,
    dataDir: process.env.BENCH_DATA_DIR,
    deploymentJson: depFile ? fs.readFileSync(depFile, 'utf8') : '{}',
  };
}

/** The line the harness waits for (same shape as the project's). */
export function announce(name: string, port: number): void {
  process.stdout.write(JSON.stringify({ msg: 'listening', peer: name, port }) + '\n');
}

export interface Claims {
  sub: string;
  nft: string;
  sid: string;
  exp: number;
}

/**
 * Verifies the project's access tokens with jose (EdDSA, issuer secret-panthers) and caches the
 * claims until expiry, exactly as the project's TokenService does: same work on both sides.
 */
export class JwtVerifier {
  private readonly cache = new Map<string, Claims>();
  private constructor(private readonly key: jose.CryptoKey | Uint8Array) {}

  static async create(jwk: jose.JWK | undefined): Promise<JwtVerifier> {
    if (!jwk) throw new Error('BENCH_JWK_FILE is required for this peer');
    return new JwtVerifier((await jose.importJWK(jwk, 'EdDSA')) as jose.CryptoKey);
  }

  async verify(token: string): Promise<Claims> {
    const now = Date.now() / 1000;
    const hit = this.cache.get(token);
    if (hit && hit.exp > now) return hit;
    const { payload } = await jose.jwtVerify(token, this.key, {
      algorithms: ['EdDSA'],
      issuer: 'secret-panthers',
      requiredClaims: ['sub', 'exp', 'sid', 'nft'],
    });
    const claims = { sub: payload.sub!, nft: String(payload.nft), sid: String(payload.sid), exp: payload.exp! };
    if (this.cache.size >= 100_000) this.cache.clear();
    this.cache.set(token, claims);
    return claims;
  }
}

export function bearer(header: string | undefined): string {
  return header?.startsWith('Bearer ') ? header.slice(7) : '';
}

export const UNAUTHORIZED = JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'Invalid access token', details: {} } });
export const NOT_FOUND = JSON.stringify({ error: { code: 'NOT_FOUND', message: 'No deployment for this NFT', details: {} } });

interface DeploymentRow {
  id: string;
  nft_token_id: string;
  wallet: string;
  provider: string;
  status: string;
  progress: number;
  endpoint_url: string | null;
  resources: string;
  health: string | null;
  created_at: number;
  updated_at: number;
}

/** The GET /v1/deployments/{nft} body built from the deployments row (the spec's fields). */
export function deploymentBody(row: DeploymentRow): Record<string, unknown> {
  return {
    deployment_id: row.id,
    nft_token_id: row.nft_token_id,
    status: row.status,
    provider: row.provider,
    progress: row.progress,
    endpoint_url: row.endpoint_url,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
    resources: JSON.parse(row.resources),
    health: row.health ? JSON.parse(row.health) : null,
  };
}

/** The SQLite work of a chat turn and a deployment read, on the project's schema. */
export class PeerStore {
  readonly db: Database.Database;
  private readonly latestDeployment;
  private readonly insertConversation;
  private readonly touchConversation;
  private readonly insertMessage;

  constructor(dataDir: string) {
    this.db = openDatabase(dataDir);
    this.latestDeployment = this.db.prepare<[string], DeploymentRow>(
      'SELECT * FROM deployments WHERE nft_token_id = ? ORDER BY created_at DESC LIMIT 1',
    );
    this.insertConversation = this.db.prepare(
      'INSERT INTO conversations (id, nft_token_id, wallet, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.touchConversation = this.db.prepare('UPDATE conversations SET updated_at = ? WHERE id = ?');
    this.insertMessage = this.db.prepare(
      'INSERT INTO messages (conversation_id, role, content, tokens, incomplete, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
  }

  deployment(nft: string): DeploymentRow | undefined {
    return this.latestDeployment.get(nft);
  }

  /** Persists the user's message (creating the conversation) before the reply streams. */
  beginTurn(conversationId: string | undefined, nft: string, wallet: string, message: string): string {
    const now = Date.now();
    const id = conversationId ?? randomUUID();
    if (!conversationId) this.insertConversation.run(id, nft, wallet, now, now);
    else this.touchConversation.run(now, id);
    this.insertMessage.run(id, 'user', message, Math.ceil(message.length / 4), 0, now);
    return id;
  }

  /** Persists the assistant's reply once streamed (incomplete when the client left mid-way). */
  endTurn(conversationId: string, reply: string, incomplete: boolean): void {
    const now = Date.now();
    this.insertMessage.run(conversationId, 'assistant', reply, Math.ceil(reply.length / 4), incomplete ? 1 : 0, now);
    this.touchConversation.run(now, conversationId);
  }
}

/**
 * Streams the chunks at the scripted pace: chunk i is due at start + (i + 1) * delayMs (the first
 * after one delay, as a model produces its first token after a while), on the same shared
 * per-millisecond clock as the project's scripted model, so pacing costs both sides the same.
 * Returns a cancel function.
 */
export function paceChunks(
  chunks: readonly string[],
  delayMs: number,
  onChunk: (content: string, index: number) => boolean | void,
  onDone: (reply: string, completed: boolean) => void,
): () => void {
  let i = 0;
  let cancelled = false;
  const start = performance.now();
  let cancelWake: () => void;
  const tick = () => {
    if (cancelled) return;
    if (onChunk(chunks[i]!, i) === false) {
      cancelled = true;
      onDone(chunks.slice(0, i).join(''), false);
      return;
    }
    i++;
    if (i < chunks.length) cancelWake = tokenClock.wakeAt(start + (i + 1) * delayMs, tick);
    else onDone(chunks.join(''), true);
  };
  cancelWake = tokenClock.wakeAt(start + delayMs, tick);
  return () => {
    if (cancelled || i >= chunks.length) return;
    cancelled = true;
    cancelWake();
    onDone(chunks.slice(0, i).join(''), false);
  };
}

/** Pre-rendered frames (pino's habit): only the content is serialized per chunk. */
export function chunkFrame(conversationId: string, content: string): string {
  return `{"type":"chat_chunk","conversation_id":"${conversationId}","content":${JSON.stringify(content)},"done":false}`;
}
export function doneFrame(conversationId: string, tokens: number): string {
  return `{"type":"chat_chunk","conversation_id":"${conversationId}","content":"","done":true,"tokens_used":${tokens}}`;
}
export function sseChunk(content: string): string {
  return `data: {"content":${JSON.stringify(content)},"done":false}\n\n`;
}
export function sseDone(conversationId: string, tokens: number): string {
  return `data: {"content":"","done":true,"conversation_id":"${conversationId}","tokens_used":${tokens}}\n\n`;
}

/** The chat request both transports carry. */
export interface ChatStreamRequest {
  type?: string;
  conversation_id?: string;
  nft_token_id?: string;
  message?: string;
}

export function onSignals(close: () => void): void {
  const stop = () => {
    close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
