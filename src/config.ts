import { availableParallelism, hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { defaultPublicUrl } from './server/public-url.js';

/**
 * Configuration from environment variables (and `bin/panthers serve` flags, which the CLI maps
 * onto the same names). Validated once at start: a bad value stops the process with a message
 * naming the variable.
 */
export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  dataDir: string;
  /** The origin used in sign-in messages and endpoint URLs. */
  publicUrl: string;
  /** false when publicUrl was derived from PORT (and is fixed up once an ephemeral port is bound) */
  publicUrlExplicit: boolean;
  bodyLimit: number;
  logLevel: string;
  logPretty: boolean;
  ownership: 'registry' | 'evm';
  ownersFile: string | undefined;
  ownershipCacheMs: number;
  /** how often ownership changes are polled (registry diff; evm Transfer logs) */
  ownershipPollMs: number;
  /** what happens to the previous holder's conversations when an NFT changes hands */
  transferConversations: 'keep' | 'wipe';
  /** how long the immediately previous refresh token is still answered (with the same new pair) */
  refreshGraceMs: number;
  evmRpcUrl: string | undefined;
  nftContract: string | undefined;
  chainId: number;
  rateLimits: RateLimits | 'off';
  trustedProxies: string[];
  /**
   * How requests reach this process (the agent image sets it from the deploy spec):
   * 'none' = directly or through PANTHERS_TRUSTED_PROXIES; 'http' = only through the provider's
   * HTTP ingress (Akash: plain HTTP, TLS at the ingress only when the provider offers it);
   * 'tls' = only through a TLS-terminating proxy next to it (SecretVM's Traefik on 443).
   * Behind an ingress the peer is the proxy, so its X-Forwarded-* headers are believed.
   */
  ingress: 'none' | 'http' | 'tls';
  /** Provider endpoints on loopback/private addresses are accepted (tests, private clouds). */
  allowPrivateEndpoints: boolean;
  corsOrigins: string[];
  requireSignedRequests: boolean;
  chatDailyTokenQuota: number; // 0 = off
  /** Models a deployment may name ("backend:model" or "backend:*"); empty = any. */
  modelsAllowed: string[];
  /** Open WebSockets one wallet / one client IP may hold at once. */
  wsMaxPerWallet: number;
  wsMaxPerIp: number;
  /** Rows the audit log keeps at most; past it the oldest are pruned (the chain stays verifiable). */
  auditMaxRows: number;
  auditRetentionDays: number; // 0 = keep forever
  requestTimeoutMs: number;
  /** A streamed reply's deadline (SSE and WS turns): then it is cut short, stored incomplete, and ended. */
  streamTimeoutMs: number;
  /** How long an Idempotency-Key (or WS message_id) is remembered. */
  idempotencyTtlMs: number;
  eventLoopLagLimitMs: number;
  actorIdleMs: number;
  shutdownGraceMs: number;
  model: ModelKind;
  scriptedDelayMs: number;
  openai: { baseUrl: string; apiKey: string | undefined; model: string; maxTokensField: 'max_tokens' | 'max_completion_tokens' };
  ollama: { baseUrl: string; model: string };
  /** the embedded llama.cpp backend (opt-in: `npm run setup:llama`) */
  llama: { modelPath: string | undefined; contextSize: number; threads: number; gpuLayers: number; sequences: number; temperature: number };
  /** the most tokens a reply may have, whatever the caller asks (every backend is told) */
  modelMaxTokens: number;
  modelTimeoutMs: number;
  chatConcurrency: number;
  historyTokenBudget: number;
  maxMessageChars: number;
  wsMaxBufferedBytes: number;
  wsIdleTimeoutSec: number;
  deploy: {
    healthIntervalMs: number;
    providerConcurrency: number;
    providerRatePerSec: number;
    providerTimeoutMs: number;
    maxCpu: number;
    maxMemoryMb: number;
    maxDiskMb: number;
    maxGpu: number;
  };
  akash: {
    apiUrl: string;
    apiKey: string | undefined;
    image: string;
    priceCap: number;
    denom: string;
    bidTimeoutMs: number;
    pollIntervalMs: number;
    /** storage class of the agent's persistent data volume (beta1 hdd, beta2 ssd, beta3 nvme) */
    storageClass: string;
  };
  secretvm: {
    apiUrl: string;
    apiKey: string | undefined;
    vmType: string;
    pollIntervalMs: number;
    readyTimeoutMs: number;
  };
  orchestratorJwksUrl: string | undefined;
  /** Orchestrator: lifetime of agent-scoped tokens (POST /agents/{nft}/token), at most 900 s. */
  agentTokenTtlSec: number;
  /** Standalone agent: the orchestrator it pulls revocations from and asks about ownership. */
  orchestratorUrl: string | undefined;
  /** Standalone agent: its per-deployment credential (answers only for its own NFT). */
  agentCredential: string | undefined;
  /** Standalone agent: how often it pulls the revocation list. */
  agentRevocationPollMs: number;
  /** Standalone agent: refuse orchestrator-issued tokens when the last good pull is older than this. */
  agentRevocationMaxStaleMs: number;
  /** Cluster mode (docs/cluster.md): set when PANTHERS_DATABASE_URL and PANTHERS_NATS_URL both are. */
  cluster: ClusterConfig | undefined;
}

export interface ClusterConfig {
  databaseUrl: string;
  natsUrl: string;
  /** PANTHERS_NODE_ID, or generated once per process (shown in /health and /metrics). */
  nodeId: string;
  /** How long a shard lease lasts without renewal (the database's clock decides expiry). */
  leaseTtlMs: number;
  /** How often the node renews its leases (one statement), heartbeats and rebalances. */
  renewMs: number;
  /** At most this many shards change hands per tick when a node joins (the old owner drains first). */
  rebalanceBatch: number;
  /** How often local rate-limit counts are exchanged with the other nodes. */
  rateSyncMs: number;
  /**
   * PANTHERS_CLUSTER_SECRET (32+ characters, the same on every node): seals the signing keys all
   * nodes share in PostgreSQL. A node without it refuses to start when it needs the key.
   */
  clusterSecret: string | undefined;
  /**
   * PANTHERS_CLUSTER_START_TIMEOUT_MS: how long a starting node retries PostgreSQL or NATS while
   * they are unreachable (default 60 s); a configuration error is never retried.
   */
  startTimeoutMs?: number;
}

export type ModelKind = 'scripted' | 'openai' | 'ollama' | 'llama';
export type RateClass = 'auth' | 'deployment' | 'chat' | 'other';
export type RateLimits = Record<RateClass, number>;

export const DEFAULT_RATE_LIMITS: RateLimits = { auth: 5, deployment: 10, chat: 30, other: 60 };

export class ConfigError extends Error {
  constructor(readonly variable: string, why: string) {
    super(`invalid configuration: ${variable} ${why}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function num(env: Env, name: string, dflt: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new ConfigError(name, `must be a number >= ${min}, got "${raw}"`);
  return n;
}

function bool(env: Env, name: string, dflt: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], dflt: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function url(env: Env, name: string, dflt: string | undefined): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be an absolute URL, got "${raw}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(name, 'must be an http(s) URL');
  return raw.replace(/\/+$/, '');
}

function list(env: Env, name: string): string[] {
  const raw = env[name];
  if (!raw) return [];
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

const MODEL_ENTRY_RE = /^(scripted|openai|ollama|llama)(:[^\s,]{1,128})?$/;

/** PANTHERS_MODELS_ALLOWED: "openai:gpt-4o-mini,ollama:*,scripted" (a bare backend = its default model). */
function modelsAllowed(env: Env): string[] {
  const entries = list(env, 'PANTHERS_MODELS_ALLOWED');
  for (const e of entries) {
    if (!MODEL_ENTRY_RE.test(e)) {
      throw new ConfigError('PANTHERS_MODELS_ALLOWED', `entries must be backend, backend:model or backend:* (backends: scripted, openai, ollama, llama), got "${e}"`);
    }
  }
  return entries;
}

function openaiConfig(env: Env): Config['openai'] {
  const baseUrl = url(env, 'PANTHERS_OPENAI_BASE_URL', 'https://api.openai.com/v1')!;
  // OpenAI itself deprecates max_tokens (its reasoning models refuse it) for max_completion_tokens;
  // vLLM, llama.cpp's server, LM Studio and most compatible servers read max_tokens.
  const official = new URL(baseUrl).hostname === 'api.openai.com';
  return {
    baseUrl,
    apiKey: env.PANTHERS_OPENAI_API_KEY || undefined,
    model: env.PANTHERS_OPENAI_MODEL || 'gpt-4o-mini',
    maxTokensField: oneOf(env, 'PANTHERS_OPENAI_MAX_TOKENS_FIELD', ['max_tokens', 'max_completion_tokens'] as const, official ? 'max_completion_tokens' : 'max_tokens'),
  };
}

export function parseRateLimits(raw: string | undefined): RateLimits | 'off' {
  if (raw === undefined || raw.trim() === '') return { ...DEFAULT_RATE_LIMITS };
  if (raw.trim().toLowerCase() === 'off') return 'off';
  const limits = { ...DEFAULT_RATE_LIMITS };
  for (const part of raw.split(',')) {
    const m = /^\s*(auth|deployment|chat|other)\s*=\s*(\d+)\s*$/.exec(part);
    if (!m) {
      throw new ConfigError('PANTHERS_RATE_LIMITS', `must look like "auth=5,deployment=10,chat=30,other=60" or "off", got "${raw}"`);
    }
    const n = Number(m[2]);
    if (n < 1) throw new ConfigError('PANTHERS_RATE_LIMITS', `${m[1]} must be at least 1 per minute`);
    limits[m[1] as RateClass] = n;
  }
  return limits;
}

/** Builds the configuration from an environment (process.env by default). Throws ConfigError. */
export function loadConfig(env: Env = process.env): Config {
  const cluster = clusterConfig(env);
  const port = int(env, 'PORT', 3000, 0, 65535);
  const host = env.HOST || '127.0.0.1';
  const nodeEnv = oneOf(env, 'PANTHERS_ENV', ['development', 'production', 'test'] as const, 'development');
  const publicUrl = url(env, 'PANTHERS_PUBLIC_URL', undefined) ?? defaultPublicUrl(host, port);
  const ownership = oneOf(env, 'PANTHERS_OWNERSHIP', ['registry', 'evm'] as const, 'registry');
  const evmRpcUrl = url(env, 'PANTHERS_EVM_RPC_URL', undefined);
  const nftContract = env.PANTHERS_NFT_CONTRACT || undefined;
  if (nftContract !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(nftContract)) {
    throw new ConfigError('PANTHERS_NFT_CONTRACT', `must be a 0x-prefixed 20-byte address, got "${nftContract}"`);
  }
  if (ownership === 'evm') {
    if (!evmRpcUrl) throw new ConfigError('PANTHERS_EVM_RPC_URL', 'is required when PANTHERS_OWNERSHIP=evm');
    if (!nftContract) throw new ConfigError('PANTHERS_NFT_CONTRACT', 'is required when PANTHERS_OWNERSHIP=evm');
  }
  const logLevel = oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info');
  const dataDir = path.resolve(env.PANTHERS_DATA_DIR || './data');
  return {
    env: nodeEnv,
    port,
    host,
    dataDir,
    publicUrl,
    publicUrlExplicit: Boolean(env.PANTHERS_PUBLIC_URL),
    bodyLimit: int(env, 'PANTHERS_BODY_LIMIT', 1024 * 1024, 1),
    logLevel,
    logPretty: bool(env, 'LOG_PRETTY', false),
    ownership,
    ownersFile: env.PANTHERS_OWNERS_FILE ? path.resolve(env.PANTHERS_OWNERS_FILE) : undefined,
    ownershipCacheMs: int(env, 'PANTHERS_OWNERSHIP_CACHE_MS', 30_000),
    ownershipPollMs: int(env, 'PANTHERS_OWNERSHIP_POLL_MS', 1000, 50, 3_600_000),
    transferConversations: oneOf(env, 'PANTHERS_TRANSFER_CONVERSATIONS', ['keep', 'wipe'] as const, 'keep'),
    refreshGraceMs: int(env, 'PANTHERS_REFRESH_GRACE_MS', 10_000, 0, 600_000),
    evmRpcUrl,
    nftContract,
    chainId: int(env, 'PANTHERS_CHAIN_ID', 1, 1),
    rateLimits: parseRateLimits(env.PANTHERS_RATE_LIMITS),
    trustedProxies: list(env, 'PANTHERS_TRUSTED_PROXIES'),
    ingress: oneOf(env, 'PANTHERS_INGRESS', ['none', 'http', 'tls'] as const, 'none'),
    allowPrivateEndpoints: bool(env, 'PANTHERS_ALLOW_PRIVATE_ENDPOINTS', false),
    corsOrigins: list(env, 'PANTHERS_CORS_ORIGINS'),
    requireSignedRequests: bool(env, 'PANTHERS_REQUIRE_SIGNED_REQUESTS', false),
    chatDailyTokenQuota: int(env, 'PANTHERS_CHAT_DAILY_TOKEN_QUOTA', 0),
    modelsAllowed: modelsAllowed(env),
    wsMaxPerWallet: int(env, 'PANTHERS_WS_MAX_PER_WALLET', 16, 1),
    wsMaxPerIp: int(env, 'PANTHERS_WS_MAX_PER_IP', 256, 1),
    auditMaxRows: int(env, 'PANTHERS_AUDIT_MAX_ROWS', 5_000_000, 100),
    auditRetentionDays: int(env, 'PANTHERS_AUDIT_RETENTION_DAYS', 90),
    requestTimeoutMs: int(env, 'PANTHERS_REQUEST_TIMEOUT_MS', 30_000, 1),
    streamTimeoutMs: int(env, 'PANTHERS_STREAM_TIMEOUT_MS', 5 * 60_000, 1),
    idempotencyTtlMs: int(env, 'PANTHERS_IDEMPOTENCY_TTL_MS', 24 * 3600_000, 1000),
    eventLoopLagLimitMs: int(env, 'PANTHERS_EVENT_LOOP_LAG_LIMIT_MS', 500, 1),
    actorIdleMs: int(env, 'PANTHERS_ACTOR_IDLE_MS', 5 * 60_000, 1),
    shutdownGraceMs: int(env, 'PANTHERS_SHUTDOWN_GRACE_MS', 10_000, 0),
    model: oneOf(env, 'PANTHERS_MODEL', ['scripted', 'openai', 'ollama', 'llama'] as const, 'scripted'),
    scriptedDelayMs: int(env, 'PANTHERS_SCRIPTED_DELAY_MS', 20),
    openai: openaiConfig(env),
    ollama: {
      baseUrl: url(env, 'PANTHERS_OLLAMA_URL', 'http://127.0.0.1:11434')!,
      model: env.PANTHERS_OLLAMA_MODEL || 'llama3.2',
    },
    llama: {
      modelPath: env.PANTHERS_LLAMA_MODEL || undefined,
      contextSize: int(env, 'PANTHERS_LLAMA_CONTEXT_SIZE', 4096, 64),
      // One core is left to the event loop: llama.cpp's threads spin while they wait.
      threads: int(env, 'PANTHERS_LLAMA_THREADS', Math.max(1, availableParallelism() - 1)),
      gpuLayers: int(env, 'PANTHERS_LLAMA_GPU_LAYERS', 0),
      sequences: int(env, 'PANTHERS_LLAMA_SEQUENCES', 4, 1, 64),
      temperature: num(env, 'PANTHERS_LLAMA_TEMPERATURE', 0.7, 0),
    },
    modelMaxTokens: int(env, 'PANTHERS_MODEL_MAX_TOKENS', 1024, 1),
    modelTimeoutMs: int(env, 'PANTHERS_MODEL_TIMEOUT_MS', 60_000, 1),
    chatConcurrency: int(env, 'PANTHERS_CHAT_CONCURRENCY', 8, 1),
    historyTokenBudget: int(env, 'PANTHERS_HISTORY_TOKEN_BUDGET', 3000, 1),
    maxMessageChars: int(env, 'PANTHERS_MAX_MESSAGE_CHARS', 8000, 1),
    wsMaxBufferedBytes: int(env, 'PANTHERS_WS_MAX_BUFFERED_BYTES', 1024 * 1024, 1024),
    wsIdleTimeoutSec: int(env, 'PANTHERS_WS_IDLE_TIMEOUT_SEC', 120, 8, 960),
    deploy: {
      healthIntervalMs: int(env, 'PANTHERS_HEALTH_INTERVAL_MS', 30_000, 10),
      providerConcurrency: int(env, 'PANTHERS_PROVIDER_CONCURRENCY', 8, 1),
      providerRatePerSec: int(env, 'PANTHERS_PROVIDER_RATE_PER_SEC', 50, 1),
      providerTimeoutMs: int(env, 'PANTHERS_PROVIDER_TIMEOUT_MS', 30_000, 1),
      maxCpu: num(env, 'PANTHERS_MAX_CPU', 8, 0.1),
      maxMemoryMb: int(env, 'PANTHERS_MAX_MEMORY_MB', 32_768, 64),
      maxDiskMb: int(env, 'PANTHERS_MAX_DISK_MB', 102_400, 64),
      maxGpu: int(env, 'PANTHERS_MAX_GPU', 1),
    },
    akash: {
      apiUrl: url(env, 'PANTHERS_AKASH_API_URL', 'https://console-api.akash.network')!,
      apiKey: env.PANTHERS_AKASH_API_KEY || undefined,
      image: env.PANTHERS_AGENT_IMAGE || 'ghcr.io/secret-panthers/agent:0.1.0',
      priceCap: num(env, 'PANTHERS_AKASH_PRICE_CAP', 10_000, 0),
      denom: env.PANTHERS_AKASH_DENOM || 'uakt',
      bidTimeoutMs: int(env, 'PANTHERS_AKASH_BID_TIMEOUT_MS', 120_000, 1),
      pollIntervalMs: int(env, 'PANTHERS_AKASH_POLL_MS', 3000, 1),
      storageClass: oneOf(env, 'PANTHERS_AKASH_STORAGE_CLASS', ['beta1', 'beta2', 'beta3'] as const, 'beta3'),
    },
    secretvm: {
      apiUrl: url(env, 'PANTHERS_SECRETVM_API_URL', 'https://secretai.scrtlabs.com')!,
      apiKey: env.PANTHERS_SECRETVM_API_KEY || undefined,
      vmType: oneOf(env, 'PANTHERS_SECRETVM_VM_TYPE', ['small', 'medium', 'large'] as const, 'small'),
      pollIntervalMs: int(env, 'PANTHERS_SECRETVM_POLL_MS', 5000, 1),
      readyTimeoutMs: int(env, 'PANTHERS_SECRETVM_READY_TIMEOUT_MS', 600_000, 1),
    },
    orchestratorJwksUrl: url(env, 'PANTHERS_ORCHESTRATOR_JWKS_URL', undefined),
    agentTokenTtlSec: int(env, 'PANTHERS_AGENT_TOKEN_TTL_SEC', 600, 1, 900),
    orchestratorUrl: url(env, 'PANTHERS_ORCHESTRATOR_URL', undefined),
    agentCredential: env.PANTHERS_AGENT_CREDENTIAL || undefined,
    agentRevocationPollMs: int(env, 'PANTHERS_AGENT_REVOCATION_POLL_MS', 2000, 50, 60_000),
    agentRevocationMaxStaleMs: int(env, 'PANTHERS_AGENT_REVOCATION_MAX_STALE_MS', 30_000, 100, 3_600_000),
    cluster,
  };
}

const NODE_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * PANTHERS_DATABASE_URL + PANTHERS_NATS_URL turn the process into a cluster node; one without the
 * other is a mistake (a node on PostgreSQL without NATS could not forward, one on NATS without
 * PostgreSQL would have no shared truth), so it stops the start instead of guessing.
 */
function clusterSecret(env: Env): string | undefined {
  const s = env.PANTHERS_CLUSTER_SECRET || undefined;
  if (s !== undefined && s.length < 32) throw new ConfigError('PANTHERS_CLUSTER_SECRET', 'must be at least 32 characters (it seals the signing keys every node shares)');
  return s;
}

function clusterConfig(env: Env): ClusterConfig | undefined {
  const db = env.PANTHERS_DATABASE_URL || undefined;
  const nats = env.PANTHERS_NATS_URL || undefined;
  if (!db && !nats) return undefined;
  if (!db) throw new ConfigError('PANTHERS_DATABASE_URL', 'is required with PANTHERS_NATS_URL (cluster mode needs both; unset both to run one process on SQLite)');
  if (!nats) throw new ConfigError('PANTHERS_NATS_URL', 'is required with PANTHERS_DATABASE_URL (cluster mode needs both; unset both to run one process on SQLite)');
  const scheme = (name: string, raw: string, allowed: string[]) => {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new ConfigError(name, 'must be an absolute URL');
    }
    if (!allowed.includes(u.protocol)) throw new ConfigError(name, `must be a ${allowed.map((a) => a.replace(':', '://')).join(' or ')} URL`);
  };
  scheme('PANTHERS_DATABASE_URL', db, ['postgres:', 'postgresql:']);
  for (const one of nats.split(',')) scheme('PANTHERS_NATS_URL', one.trim(), ['nats:', 'tls:']);
  const nodeId = env.PANTHERS_NODE_ID || generatedNodeId();
  if (!NODE_ID_RE.test(nodeId)) throw new ConfigError('PANTHERS_NODE_ID', `must be 1-64 letters, digits, _ or -, got "${nodeId}"`);
  const leaseTtlMs = int(env, 'PANTHERS_CLUSTER_LEASE_TTL_MS', 5000, 1000, 120_000);
  const renewMs = int(env, 'PANTHERS_CLUSTER_RENEW_MS', Math.min(1000, Math.floor(leaseTtlMs / 4)), 50, 60_000);
  if (renewMs * 2 >= leaseTtlMs) throw new ConfigError('PANTHERS_CLUSTER_RENEW_MS', `must be less than half of PANTHERS_CLUSTER_LEASE_TTL_MS (${leaseTtlMs}), got ${renewMs}`);
  return {
    databaseUrl: db,
    natsUrl: nats,
    nodeId,
    leaseTtlMs,
    renewMs,
    rebalanceBatch: int(env, 'PANTHERS_CLUSTER_REBALANCE_BATCH', 16, 1, 256),
    rateSyncMs: int(env, 'PANTHERS_CLUSTER_RATE_SYNC_MS', 250, 10, 10_000),
    clusterSecret: clusterSecret(env),
    startTimeoutMs: int(env, 'PANTHERS_CLUSTER_START_TIMEOUT_MS', 60_000, 0, 3_600_000),
  };
}

/** Stable for the process: generated once, the first time a config asks for it. */
let processNodeId: string | undefined;
function generatedNodeId(): string {
  return (processNodeId ??= `node-${hostname().replace(/[^A-Za-z0-9_-]/g, '').slice(0, 32) || 'host'}-${randomBytes(4).toString('hex')}`);
}
