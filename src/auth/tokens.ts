import { createHmac } from 'node:crypto';
import * as jose from 'jose';
import { ApiError } from '../errors.js';
import type { AuthClaims } from '../server/route.js';
import type { SecretStore } from './secret-store.js';
import { FileSecretStore } from './secret-store.file.js';

type Key = jose.CryptoKey | Uint8Array;

export const ACCESS_TOKEN_TTL_SEC = 3600;
/** The audience of session tokens: only the orchestrator (and its embedded agents) accept them. */
export const ORCHESTRATOR_AUDIENCE = 'orchestrator';
/** The audience of a token that only the agent of this NFT accepts (embedded or remote). */
export function agentAudience(nft: string): string {
  return `agent:${nft}`;
}
/** Agent-scoped tokens travel to hosts we do not control: they live 15 minutes at most. */
export const AGENT_TOKEN_MAX_TTL_SEC = 900;
/** iss of every access token; stable across restarts and ports (agents check it too). */
export const TOKEN_ISSUER = 'secret-panthers';
const ALG = 'EdDSA';
export const SIGNING_KEY_FILE = 'jwt-signing-key.json';

interface StoredKey {
  kid: string;
  privateJwk: jose.JWK;
  publicJwk: jose.JWK;
}

/** Loads the Ed25519 signing key from the data dir, creating it (mode 0600) on first start. */
export function loadOrCreateSigningKey(dataDir: string): Promise<StoredKey> {
  return loadOrCreateSigningKeyIn(new FileSecretStore(dataDir));
}

/**
 * The signing key from a SecretStore: the data dir (one process) or PostgreSQL (a cluster: the
 * first node to start creates it, every node reads the same one).
 */
export async function loadOrCreateSigningKeyIn(secrets: SecretStore): Promise<StoredKey> {
  const raw = await secrets.getOrCreate(SIGNING_KEY_FILE, async () => {
    const { privateKey, publicKey } = await jose.generateKeyPair(ALG, { crv: 'Ed25519', extractable: true });
    const publicJwk = await jose.exportJWK(publicKey);
    const kid = await jose.calculateJwkThumbprint(publicJwk);
    const stored: StoredKey = {
      kid,
      privateJwk: { ...(await jose.exportJWK(privateKey)), kid, alg: ALG, use: 'sig' },
      publicJwk: { ...publicJwk, kid, alg: ALG, use: 'sig' },
    };
    return Buffer.from(JSON.stringify(stored));
  });
  return JSON.parse(raw.toString('utf8')) as StoredKey;
}

/**
 * Issues and verifies access JWTs. A verified token's claims are cached until it expires, so the
 * hot path of an authenticated request is one Map lookup (signature checked once per token).
 */
export class TokenService {
  private readonly cache = new Map<string, AuthClaims>();
  private constructor(
    private readonly key: StoredKey,
    private readonly privateKey: Key,
    private readonly publicKey: Key,
    private readonly issuer: string,
    private readonly now: () => number,
    private readonly maxCache = 100_000,
  ) {}

  /** `secrets`: where the key lives (default: the data dir; a cluster passes the PostgreSQL store). */
  static async create(dataDir: string, issuer: string, now: () => number = Date.now, secrets?: SecretStore): Promise<TokenService> {
    const key = await loadOrCreateSigningKeyIn(secrets ?? new FileSecretStore(dataDir));
    const priv = await jose.importJWK(key.privateJwk, ALG);
    const pub = await jose.importJWK(key.publicJwk, ALG);
    return new TokenService(key, priv as jose.CryptoKey, pub as jose.CryptoKey, issuer, now);
  }

  get kid(): string {
    return this.key.kid;
  }

  jwks(): { keys: jose.JWK[] } {
    return { keys: [this.key.publicJwk] };
  }

  /**
   * A secret for `label`, derived from the signing key (HMAC-SHA256 over its private scalar):
   * stable across restarts without another key file. Used for refresh-token rotation.
   */
  deriveSecret(label: string): Buffer {
    return createHmac('sha256', Buffer.from(this.key.privateJwk.d!, 'base64url')).update(`secret-panthers/${label}`).digest();
  }

  /**
   * Signs an access token; its audience is the orchestrator unless `aud` says otherwise.
   * `issuedAtMs` pins iat (and so exp): Ed25519 signatures are deterministic, so the same claims
   * issued at the same second give the same token (a refresh retried in its grace window).
   */
  async issue(claims: { sub: string; nft: string; sid: string; aud?: string }, ttlSec = ACCESS_TOKEN_TTL_SEC, issuedAtMs?: number): Promise<{ token: string; expiresIn: number }> {
    // The clock is read once: expires_in must equal exp - iat for a token issued now, even when
    // signing crosses a second boundary (seen under load: 599 for a 600 s token).
    const nowSec = Math.floor(this.now() / 1000);
    const iat = issuedAtMs === undefined ? nowSec : Math.floor(issuedAtMs / 1000);
    const token = await new jose.SignJWT({ nft: claims.nft, sid: claims.sid })
      .setProtectedHeader({ alg: ALG, kid: this.key.kid, typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuer(this.issuer)
      .setAudience(claims.aud ?? ORCHESTRATOR_AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttlSec)
      .sign(this.privateKey);
    return { token, expiresIn: Math.max(0, iat + ttlSec - nowSec) };
  }

  /**
   * Verifies a token: TOKEN_EXPIRED when past its expiry, UNAUTHORIZED for anything else wrong,
   * including an audience not in `audiences` (an agent token at the orchestrator, or the reverse).
   */
  async verify(token: string, audiences: readonly string[] = [ORCHESTRATOR_AUDIENCE]): Promise<AuthClaims> {
    const nowSec = this.now() / 1000;
    let claims = this.cache.get(token);
    if (claims) {
      if (claims.exp <= nowSec) {
        this.cache.delete(token);
        throw new ApiError('TOKEN_EXPIRED', 'The access token has expired; refresh it');
      }
    } else {
      // Verified once without an audience; the audience is checked below on every use.
      claims = await verifyJwt(token, this.publicKey, this.issuer, this.now, 'self', undefined);
      if (this.cache.size >= this.maxCache) this.cache.clear();
      this.cache.set(token, claims);
    }
    requireAudience(claims, audiences);
    return claims;
  }
}

/** UNAUTHORIZED unless the token's audience is one of those this service accepts. */
export function requireAudience(claims: AuthClaims, audiences: readonly string[]): void {
  if (claims.aud !== undefined && audiences.includes(claims.aud)) return;
  throw new ApiError('UNAUTHORIZED', 'This access token is not for this service', {
    reason: 'wrong_audience', audience: claims.aud ?? null, expected: audiences.length === 1 ? audiences[0] : [...audiences],
  });
}

/**
 * Shared by the orchestrator's own tokens and a standalone agent checking them via JWKS.
 * `audiences` undefined: any audience (the caller checks it with requireAudience).
 */
export async function verifyJwt(
  token: string,
  key: Key | jose.JWTVerifyGetKey,
  issuer: string | undefined,
  now: () => number,
  source: 'self' | 'orchestrator',
  audiences: readonly string[] | undefined,
): Promise<AuthClaims> {
  let payload: jose.JWTPayload;
  try {
    const r = await jose.jwtVerify(token, key as jose.CryptoKey, {
      algorithms: [ALG],
      issuer,
      currentDate: new Date(now()),
      requiredClaims: ['sub', 'exp', 'iat', 'sid', 'nft', 'aud'],
    });
    payload = r.payload;
  } catch (e) {
    if (e instanceof jose.errors.JWTExpired) throw new ApiError('TOKEN_EXPIRED', 'The access token has expired; refresh it');
    if (e instanceof jose.errors.JWKSTimeout) {
      throw new ApiError('SERVICE_UNAVAILABLE', 'Cannot fetch the orchestrator key set');
    }
    throw new ApiError('UNAUTHORIZED', 'Invalid access token');
  }
  if (typeof payload.nft !== 'string' || typeof payload.sid !== 'string' || typeof payload.aud !== 'string') {
    throw new ApiError('UNAUTHORIZED', 'Invalid access token');
  }
  const claims: AuthClaims = { sub: payload.sub!, nft: payload.nft, sid: payload.sid, exp: payload.exp!, iat: payload.iat!, aud: payload.aud, issuer: source };
  if (audiences) requireAudience(claims, audiences);
  return claims;
}
