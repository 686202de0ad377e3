import { randomBytes as nodeRandomBytes } from 'node:crypto';
import type { Db } from '../db/database.js';
import { ApiError } from '../errors.js';
import { CHALLENGE_TTL_MS, Challenges } from './challenges.js';
import type { ChallengeStore } from './challenge-store.js';
import { formatSiweMessage, parseSiweMessage } from './siwe-message.js';
import { canonicalWallet, verifyWalletSignature, walletKind } from './wallet-signature.js';
import { personalMessageDigest } from './evm-signature.js';
import type { ContractSignatures } from './contract-signature.js';

/** Secret Network mainnet: the chain id written into the messages `secret1...` wallets sign. */
export const SECRET_CHAIN_ID = 'secret-4';

export interface SignInOptions {
  db: Db;
  /** where nonces live (PostgreSQL in a cluster); default: the `challenges` table of `db` */
  challenges?: ChallengeStore;
  /** "does wallet W own NFT T now" (CachedOwnership satisfies it) */
  ownership: { owns(wallet: string, nftTokenId: string): Promise<boolean> };
  now: () => number;
  /** The origin users sign in to; read per challenge (the port is known only after listen). */
  publicUrl: () => string;
  /**
   * Origins of dApps allowed to sign users in (PANTHERS_CORS_ORIGINS without `*`): a challenge
   * asked for from one of them names it as the SIWE domain and URI instead of the public URL.
   */
  allowedOrigins?: () => readonly string[];
  /** EIP-1271 / EIP-6492 checks for smart-contract wallets (with the evm verifier) */
  contractSignatures?: ContractSignatures;
  /** EIP-155 chain id for 0x wallets */
  evmChainId: number;
  cosmosChainId?: string;
  randomBytes?: (n: number) => Uint8Array;
  ttlMs?: number;
}

export interface ChallengeRequest {
  wallet_address: string;
  nft_token_id: string;
}

export interface Challenge {
  message: string;
  nonce: string;
  /** RFC 3339 */
  expires_at: string;
}

export interface SignedChallenge extends ChallengeRequest {
  signature: string;
  message: string;
  /** Cosmos only: base64 33-byte compressed public key */
  public_key?: string;
}

/**
 * Wallet sign-in, reusable by the orchestrator and a standalone agent: issues one-time
 * EIP-4361 messages for a wallet + NFT, and verifies signed ones (burning the nonce on the first
 * attempt, checking the signature, then ownership). It does not open sessions: callers do.
 */
export class SignIn {
  private readonly store: Challenges;
  private readonly random: (n: number) => Uint8Array;
  private readonly ttlMs: number;

  constructor(private readonly opts: SignInOptions) {
    this.store = new Challenges(opts.challenges ?? opts.db, opts.now);
    this.random = opts.randomBytes ?? ((n) => nodeRandomBytes(n));
    this.ttlMs = opts.ttlMs ?? CHALLENGE_TTL_MS;
  }

  /**
   * The origin a sign-in message names: the request's Origin when it is an allowed dApp origin
   * (the page the user signs on), else the public URL.
   */
  originFor(requestOrigin: string | undefined): URL {
    const o = requestOrigin?.replace(/\/+$/, '');
    if (o && this.allowed().has(o)) return new URL(o);
    return new URL(new URL(this.opts.publicUrl()).origin);
  }

  private allowed(): Set<string> {
    return new Set((this.opts.allowedOrigins?.() ?? []).filter((x) => x !== '*').map((x) => x.replace(/\/+$/, '')));
  }

  /**
   * Issues a message to sign. FORBIDDEN when the wallet does not own the NFT now. `service` names
   * another service the wallet signs in to (an agent's endpoint) instead of this server's origin.
   */
  async issueChallenge(req: ChallengeRequest, requestOrigin?: string, service?: string): Promise<Challenge> {
    const wallet = canonicalWallet(req.wallet_address);
    const nft = req.nft_token_id;
    await this.requireOwner(wallet, nft);
    const now = this.opts.now();
    // Whole seconds, so the stored expiry is exactly the one written in the message.
    const expiresAt = Math.floor((now + this.ttlMs) / 1000) * 1000;
    const nonce = Buffer.from(this.random(16)).toString('hex');
    const url = service ? new URL(service) : this.originFor(requestOrigin);
    const evm = walletKind(wallet) === 'evm';
    const message = formatSiweMessage({
      domain: url.host,
      address: wallet,
      statement: service
        ? `Sign in to the Secret Panthers agent of NFT #${nft} as its owner.`
        : `Sign in to Secret Panthers as the owner of NFT #${nft}.`,
      uri: service ? originOf(url) : url.origin,
      version: '1',
      chainId: evm ? String(this.opts.evmChainId) : (this.opts.cosmosChainId ?? SECRET_CHAIN_ID),
      nonce,
      issuedAt: rfc3339(now),
      expirationTime: rfc3339(expiresAt),
      namespace: evm ? 'Ethereum' : 'Cosmos',
    });
    await this.store.insert({ nonce, wallet, nft_token_id: nft, message, created_at: now, expires_at: expiresAt });
    return { message, nonce, expires_at: rfc3339(expiresAt) };
  }

  /**
   * Verifies a signed challenge; resolves with the canonical wallet when it is good. Throws
   * INVALID_FIELD (malformed address/signature), INVALID_SIGNATURE (not an unused, unexpired
   * message issued for this wallet and NFT, or a wrong signature) or FORBIDDEN (not the owner now).
   */
  async verifySignedChallenge(s: SignedChallenge, requestOrigin?: string, service?: string): Promise<{ wallet: string; nft: string }> {
    const wallet = canonicalWallet(s.wallet_address);
    const nft = s.nft_token_id;
    const parsed = parseSiweMessage(s.message);
    const nonce = parsed?.nonce;
    if (!parsed || !nonce) throw refused('the message is not a sign-in message issued by this server');
    // Burned before anything else is checked: every attempt costs the nonce, failed ones too.
    const row = await this.store.burn(nonce);
    if (!row) throw refused('the message was not issued by this server or was already used');
    if (row.message !== s.message) throw refused('the message differs from the one issued');
    if (row.wallet.toLowerCase() !== wallet.toLowerCase() || row.nft_token_id !== nft) {
      throw refused('the message was issued for another wallet or NFT');
    }
    if (this.opts.now() >= row.expires_at) throw refused('the message has expired; ask for a new challenge');
    if (service) this.checkService(parsed.domain, parsed.uri, service);
    else this.checkOrigin(parsed.domain, parsed.uri, requestOrigin);
    await this.checkSignature(wallet, s);
    await this.requireOwner(wallet, nft);
    return { wallet, nft };
  }

  /**
   * The message must name an origin this server signs users in for (the public URL or an allowed
   * dApp origin; either may have changed since the challenge), its domain must be that origin's
   * host, and a browser's verify request must come from the origin the message names.
   */
  private checkOrigin(domain: string, uri: string, requestOrigin: string | undefined): void {
    let u: URL;
    try {
      u = new URL(uri);
    } catch {
      throw refused('the message URI is not a URL');
    }
    const origin = u.origin;
    // Ours are bare origins; one with a path is a path-addressed agent's (its own sign-in).
    if (uri !== origin) throw refused('the message signs in to another service');
    const ours = new URL(this.opts.publicUrl()).origin;
    if (origin !== ours && !this.allowed().has(origin)) throw refused(`the message is for ${origin}, not an origin this server signs in for`);
    if (domain !== u.host) throw refused('the message domain is not the host of its URI');
    const o = requestOrigin?.replace(/\/+$/, '');
    if (o && this.allowed().has(o) && o !== origin) throw refused(`the message was issued for ${origin}, but is verified from ${o}`);
  }

  /**
   * A message for another service (an agent) must name exactly that service: one issued for the
   * orchestrator, or for another agent, opens no session here (and the orchestrator refuses an
   * agent's message in checkOrigin).
   */
  private checkService(domain: string, uri: string, service: string): void {
    const u = new URL(service);
    if (uri !== originOf(u) || domain !== u.host) throw refused('the message signs in to another service');
  }

  /** EOA signatures (EIP-191, 65 bytes or EIP-2098 compact; ADR-036), then smart-contract wallets. */
  private async checkSignature(wallet: string, s: SignedChallenge): Promise<void> {
    try {
      verifyWalletSignature({ wallet, message: s.message, signature: s.signature, publicKey: s.public_key });
    } catch (e) {
      const contracts = this.opts.contractSignatures;
      if (!contracts || walletKind(wallet) !== 'evm' || !(e instanceof ApiError)) throw e;
      if (e.code !== 'INVALID_SIGNATURE' && e.code !== 'INVALID_FIELD') throw e;
      if (await contracts.isValid(wallet, personalMessageDigest(s.message), s.signature)) return;
      if (e.code === 'INVALID_FIELD' && !/^0x([0-9a-fA-F]{2})+$/.test(s.signature)) throw e;
      throw refused('neither the wallet key nor the wallet contract (EIP-1271 / EIP-6492) accepts this signature');
    }
  }

  private async requireOwner(wallet: string, nft: string): Promise<void> {
    if (!(await this.opts.ownership.owns(wallet, nft))) {
      throw new ApiError('FORBIDDEN', `Wallet ${wallet} does not own NFT ${nft}`, { nft_token_id: nft });
    }
  }
}

/** The URI written in messages: the origin, plus the path when the service lives under one. */
function originOf(url: URL): string {
  const p = url.pathname.replace(/\/+$/, '');
  return url.origin + p;
}

function refused(reason: string): ApiError {
  return new ApiError('INVALID_SIGNATURE', 'Signature verification failed', { reason });
}

/** RFC 3339 in UTC, whole seconds. */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
