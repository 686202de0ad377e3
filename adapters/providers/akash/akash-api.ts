import { HttpClient, ProviderHttpError, type RetryPolicy, type CallLimiter } from '../http-client.js';
import type { Logger } from '../../../src/logger.js';

/**
 * The Akash Console managed-wallet API (console-api.akash.network), the calls the adapter makes.
 * Bodies are wrapped as { data }; errors are { error, message }. Shapes follow
 * akash-network/console apps/api/src/deployment/http-schemas.
 */

export interface BidId {
  owner?: string;
  dseq: string;
  gseq: number;
  oseq: number;
  provider: string;
  bseq?: number;
}

export interface Bid {
  id: BidId;
  state: string;
  price: { denom: string; amount: string };
}

export interface ServiceStatus {
  available?: number;
  total?: number;
  uris?: string[];
  ready_replicas?: number;
}

export interface AkashLease {
  id?: BidId;
  state: string;
  price?: { denom: string; amount: string };
  status?: { services?: Record<string, ServiceStatus> } | null;
}

export interface AkashDeployment {
  /** hash: the manifest version the deployment was created with (base64) */
  deployment: { id: { owner?: string; dseq: string }; state: string; hash?: string; created_at?: string };
  leases: AkashLease[];
  /** newer console versions: what the console stored for the deployment */
  consoleSettings?: { sdl?: string } | null;
}

export interface CreatedDeployment {
  dseq: string;
  manifest: string;
}

export class AkashApi {
  readonly http: HttpClient;

  constructor(baseUrl: string, apiKey: () => string, timeoutMs: number, log: Logger, retry?: Partial<RetryPolicy>, limit?: CallLimiter) {
    this.http = new HttpClient({ service: 'Akash', baseUrl, headers: () => ({ 'x-api-key': apiKey() }), timeoutMs, log, retry, limit });
  }

  async createDeployment(sdl: string, name: string, signal?: AbortSignal): Promise<CreatedDeployment> {
    const res = await this.http.request('POST', '/v1/deployments', { json: { data: { sdl, name } }, signal });
    const data = unwrap(res.body) as Partial<CreatedDeployment>;
    if (data?.dseq === undefined || typeof data.manifest !== 'string') {
      throw new ProviderHttpError('Akash POST /v1/deployments answered without a dseq and manifest', 'POST', '/v1/deployments', res.status, undefined, false, true);
    }
    return { dseq: String(data.dseq), manifest: data.manifest };
  }

  /** One page of the API key owner's deployments (newest last, as the console lists them). */
  async listDeployments(skip: number, limit: number, signal?: AbortSignal): Promise<{ deployments: AkashDeployment[]; hasMore: boolean }> {
    const res = await this.http.request('GET', '/v1/deployments', { query: { skip, limit }, signal });
    const data = unwrap(res.body) as { deployments?: AkashDeployment[]; pagination?: { hasMore?: boolean } };
    return { deployments: data?.deployments ?? [], hasMore: Boolean(data?.pagination?.hasMore) };
  }

  /** undefined when the console does not know the dseq (404). */
  async getDeployment(dseq: string, signal?: AbortSignal): Promise<AkashDeployment | undefined> {
    try {
      const res = await this.http.request('GET', `/v1/deployments/${encodeURIComponent(dseq)}`, { signal });
      const data = unwrap(res.body) as AkashDeployment;
      return { ...data, leases: Array.isArray(data?.leases) ? data.leases : [] };
    } catch (e) {
      if (e instanceof ProviderHttpError && e.status === 404) return undefined;
      throw e;
    }
  }

  async listBids(dseq: string, signal?: AbortSignal): Promise<Bid[]> {
    const res = await this.http.request('GET', '/v1/bids', { query: { dseq }, signal });
    const items = unwrap(res.body);
    if (!Array.isArray(items)) return [];
    const bids: Bid[] = [];
    for (const item of items as Array<{ bid?: Record<string, unknown> }>) {
      const b = item?.bid;
      // Older console versions name the id `bid_id`.
      const id = (b?.id ?? b?.bid_id) as BidId | undefined;
      const price = b?.price as Bid['price'] | undefined;
      if (!id || !price || typeof b?.state !== 'string') continue;
      bids.push({ id: { ...id, dseq: String(id.dseq) }, state: b.state, price });
    }
    return bids;
  }

  /** Creates the lease and sends the manifest to the provider. */
  async createLease(manifest: string, bid: BidId, signal?: AbortSignal): Promise<void> {
    const lease = { dseq: bid.dseq, gseq: bid.gseq, oseq: bid.oseq, provider: bid.provider };
    await this.http.request('POST', '/v1/leases', { json: { manifest, leases: [lease] }, signal });
  }

  /** Closes the deployment (and its leases). true when closed now or already gone. */
  async closeDeployment(dseq: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.http.request('DELETE', `/v1/deployments/${encodeURIComponent(dseq)}`, { signal });
    } catch (e) {
      if (e instanceof ProviderHttpError && (e.status === 404 || (e.status === 400 && /closed/i.test(e.providerMessage ?? '')))) return;
      throw e;
    }
  }
}

function unwrap(body: unknown): unknown {
  return body && typeof body === 'object' && 'data' in body ? (body as { data: unknown }).data : body;
}
