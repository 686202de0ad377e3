import type { AppContext } from './app-context.js';
import type { AuthClaims, RouteDef } from './server/route.js';
import type { WsMessageHandler } from './server/ws-server.js';
import type { AuditSink, RequestVerifier } from './server/http-server.js';
import type { ProviderAdapter, ProviderName } from './providers/provider.js';
import type { ModelBackend } from './models/model-backend.js';
import type { Router } from './server/router.js';

/**
 * What a feature module (auth, deployments, agents, guarantees) gets to wire itself into the
 * process. createApp calls each module of src/features.ts once, in order.
 */
export interface Feature {
  readonly ctx: AppContext;
  readonly routers: { api: Router; agents: Router };
  addRoutes(routes: RouteDef[]): void;
  /** Agent API routes (embedded agents): reached by Host name or /v1/agents/{nft}/. */
  addAgentRoutes(routes: RouteDef[]): void;
  addWsHandlers(handlers: Record<string, WsMessageHandler>): void;
  /** Every WS message handler added so far, by type (the OpenAPI document lists their schemas). */
  readonly wsHandlers: Readonly<Record<string, WsMessageHandler>>;
  setProvider(name: ProviderName, adapter: ProviderAdapter): void;
  setModel(name: string, backend: ModelBackend): void;
  /** Replaces token verification for HTTP and WS (e.g. to add session revocation). */
  /** `agentNft` is set when an HTTP request addresses that NFT's embedded agent. */
  setAuthenticate(fn: (token: string, agentNft?: string) => Promise<AuthClaims>): void;
  setAudit(sink: AuditSink): void;
  setRequestVerifier(v: RequestVerifier): void;
  setDeploymentsActive(fn: () => number): void;
  /** A check /health runs: a sentence while something is near a limit (health says degraded). */
  addHealthWarning(fn: () => string | undefined): void;
  onStart(fn: () => Promise<void> | void): void;
  onStop(fn: () => Promise<void> | void): void;
}

export type FeatureModule = (f: Feature) => void | Promise<void>;
