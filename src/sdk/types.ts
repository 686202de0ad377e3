import type { Resources, AgentSettings } from '../providers/provider.js';

/** The API's request and response shapes, as the SDK's methods take and return them. */

export type Provider = 'local' | 'akash' | 'secret_vm';
export type DeploymentStatus = 'pending' | 'deploying' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface Challenge {
  message: string;
  nonce: string;
  expires_at: string;
}

export interface VerifyRequest {
  wallet_address: string;
  nft_token_id: string;
  signature: string;
  message: string;
  public_key?: string;
}

export interface VerifyResponse {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  session_id: string;
  /** present when the server requires HMAC-signed requests (PANTHERS_REQUIRE_SIGNED_REQUESTS) */
  signing_key?: string;
}

export interface RefreshResponse {
  access_token: string;
  expires_in: number;
  /** rotated: the old one stops working */
  refresh_token: string;
}

export interface SessionInfo {
  wallet_address: string;
  nft_token_id: string;
  session_id: string;
  expires_at: string;
  access_token_expires_at?: string;
}

// The server's own definitions (type-only: nothing of the server is bundled into the client).
export type { Resources, AgentSettings };

export interface DeployRequest {
  nft_token_id: string;
  provider: Provider;
  resources?: Partial<Resources>;
  agent?: Partial<AgentSettings>;
}

export interface DeployResponse {
  deployment_id: string;
  nft_token_id: string;
  status: DeploymentStatus;
  provider: Provider;
  endpoint_url: string | null;
  estimated_time: number;
}

export interface Deployment {
  deployment_id: string;
  nft_token_id: string;
  status: DeploymentStatus;
  provider: Provider;
  endpoint_url: string | null;
  progress: number;
  created_at: string;
  updated_at: string;
  resources: Resources;
  agent: AgentSettings;
  health: { ok: boolean; checked_at: string; latency_ms: number; message: string } | null;
  error: string | null;
  details: Record<string, unknown> | null;
}

export interface StopResponse {
  message: string;
  status: DeploymentStatus;
  deployment_id: string;
}

export interface Pagination {
  total: number;
  limit: number;
  offset: number;
  has_more: boolean;
}

export interface ListDeploymentsQuery {
  status?: DeploymentStatus;
  provider?: Provider;
  limit?: number;
  offset?: number;
  sort?: 'created_at' | 'status' | 'nft_token_id';
  order?: 'asc' | 'desc';
}

export interface DeploymentList {
  deployments: Deployment[];
  total: number;
  pagination: Pagination;
}

/** One WS `deployment_status` frame; `snapshot` marks the state read when the watch (re)started. */
export interface DeploymentUpdate {
  type: 'deployment_status';
  deployment_id: string;
  nft_token_id: string;
  status: DeploymentStatus;
  progress: number;
  message: string;
  endpoint_url: string | null;
  timestamp: string;
  snapshot?: boolean;
}

export interface Health {
  status: 'healthy' | 'unhealthy';
  version: string;
  uptime: number;
  deployments_active: number;
}

/** POST /v1/agents/{nft}/token: a short-lived token only that NFT's agent accepts. */
export interface AgentToken {
  access_token: string;
  token_type: 'Bearer';
  /** seconds (at most 900) */
  expires_in: number;
  /** 'agent:{nft}' */
  audience: string;
  /** where the agent answers */
  endpoint_url: string;
  provider: string;
}

/** An agent's own sign-in (POST /auth/verify at the agent): no refresh token. */
export interface AgentVerifyResponse {
  access_token: string;
  expires_in: number;
}

export interface AgentHealth {
  status: string;
  version: string;
  uptime: number;
}

export interface AgentInfo {
  name: string;
  nft_token_id: string;
  capabilities: string[];
  model: string;
  status: string;
}

export interface ChatRequest {
  message: string;
  conversation_id?: string;
}

export interface ChatResponse {
  response: string;
  conversation_id: string;
  timestamp: string;
  tokens_used: number;
}

/** A piece of a streamed answer. */
export interface ChatChunk {
  content: string;
}

/** The end of a streamed answer: the whole response as stored. */
export interface ChatFinal extends ChatResponse {
  /** true when the turn stopped early (the stored answer is partial) */
  incomplete: boolean;
}

export interface HistoryMessage {
  role: string;
  content: string;
  timestamp: string;
  tokens: number;
  incomplete: boolean;
}

export interface History {
  messages: HistoryMessage[];
  total: number;
  conversation_id: string;
  pagination: Pagination;
}

export interface ClearResponse {
  message: string;
  conversation_id: string;
  deleted: number;
}

export interface Jwks {
  keys: Record<string, unknown>[];
}
