import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { startFakeServer, jsonBody, type Fault, type FakeReply, type FakeServer } from './fault-injection.js';
import { RemoteAgent } from './remote-agent.js';

/**
 * A local Akash Console managed-wallet API (the shapes of akash-network/console
 * apps/api/src/deployment/http-schemas): { data } bodies, { error, message } errors, x-api-key
 * auth. Its "provider" also serves GET /health, and the lease URIs point back at it (without a
 * scheme, as real providers report them), so a health check of a fake agent really answers.
 *
 * With `runAgents`, the lease does what a real provider does with the manifest
 * (akash-network/provider cluster/kube/builder): the SDL's service runs, as the image runs it,
 * with the SDL's env and its persistent storage mounted at params.storage.<name>.mount, behind
 * an ingress-nginx-like proxy whose address is the lease URI (a bare host:port). The service
 * counts as a ready replica while the process listens. Closing the deployment ends the process
 * and deletes the volume (Akash storage lives as long as the lease).
 *
 * `journal` (from fault-injection.ts) lists every call as { method, path, query, body, status }.
 *
 * Checked against akash-network/console@d84c9e93 apps/api/src/deployment/http-schemas/
 * (lease.schema.ts: CreateLeaseRequest { manifest, leases[{ dseq, gseq, oseq, provider }] },
 * LeaseStatusResponse { forwarded_ports, ips, services.<name> { available, total, uris,
 * ready_replicas, ... } }) and akash-network/provider@afc4dd7c (ingress, storage).
 */

export interface FakeBid {
  provider: string;
  amount: string;
  denom?: string;
}

export interface FakeAkashOptions {
  apiKey?: string;
  /** bids to offer (default: two open uakt bids, 5 and 3) */
  bids?: FakeBid[];
  /** bids appear only from this poll of GET /v1/bids on (default 1 = the first poll) */
  bidsAfterPolls?: number;
  noBids?: boolean;
  /** the bid chosen for the lease is lost when the lease is requested */
  loseBid?: boolean;
  /** 'lease': POST /v1/leases refuses for lack of funds; 'status': the lease turns insufficient_funds */
  insufficientFunds?: 'lease' | 'status';
  /** the agent reports ready after this many status polls following the lease (default 1) */
  readyAfterPolls?: number;
  neverReady?: boolean;
  /** a create answers 400 and quotes the SDL back (a provider echoing what it got) */
  echoSdlInError?: boolean;
  faults?: Fault[];
  /** run the SDL's agent for real behind an ingress-like proxy (TLS when a certificate is given) */
  runAgents?: { tls?: { key: string; cert: string }; env?: Record<string, string> };
  /**
   * false: GET /v1/deployments/{dseq} returns no consoleSettings.sdl, as the console's
   * DeploymentResponseSchema (apps/api/src/deployment/http-schemas/deployment.schema.ts) has none
   */
  sdlReadBack?: boolean;
}

export interface FakeLease {
  gseq: number;
  oseq: number;
  provider: string;
  state: 'active' | 'insufficient_funds' | 'closed';
  price: { denom: string; amount: string };
  statusPolls: number;
}

export interface FakeDeployment {
  dseq: string;
  owner: string;
  sdl: string;
  name?: string;
  manifest: string;
  state: 'active' | 'closed';
  createdAt: string;
  bidPolls: number;
  bids: Array<FakeBid & { state: string; gseq: number; oseq: number }>;
  leases: FakeLease[];
  /** the running service (runAgents) */
  agent?: RemoteAgent;
}

export interface FakeAkash extends FakeServer {
  opts: FakeAkashOptions;
  deployments: Map<string, FakeDeployment>;
  counts: { deploymentsCreated: number; leasesCreated: number; closes: number };
  activeDeployments(): FakeDeployment[];
  /** the agent process of a deployment restarts (a pod restart): its persistent volume stays */
  restartAgent(dseq: string): Promise<void>;
}

const OWNER = 'akash1fakeowner0000000000000000000000000000';

export async function startFakeAkash(opts: FakeAkashOptions = {}): Promise<FakeAkash> {
  const apiKey = opts.apiKey ?? 'test-akash-key';
  const deployments = new Map<string, FakeDeployment>();
  const counts = { deploymentsCreated: 0, leasesCreated: 0, closes: 0 };
  let nextDseq = 21_000_000;
  let self: FakeServer;

  const err = (status: number, error: string, message: string): FakeReply => ({ status, body: { error, message } });

  function leaseView(d: FakeDeployment, l: FakeLease, withStatus: boolean) {
    const ready = !opts.neverReady && l.state === 'active' && l.statusPolls >= (opts.readyAfterPolls ?? 1) && (!d.agent || d.agent.ready());
    const host = d.agent ? d.agent.ingress.host : new URL(self.url).host;
    return {
      id: { owner: d.owner, dseq: d.dseq, gseq: l.gseq, oseq: l.oseq, provider: l.provider, bseq: 0 },
      state: l.state,
      price: l.price,
      created_at: d.createdAt,
      closed_on: '',
      ...(withStatus
        ? {
            status: {
              forwarded_ports: {},
              ips: {},
              services: {
                agent: {
                  name: 'agent', available: ready ? 1 : 0, total: 1, uris: ready ? [host] : [],
                  observed_generation: 1, replicas: 1, updated_replicas: 1,
                  ready_replicas: ready ? 1 : 0, available_replicas: ready ? 1 : 0,
                },
              },
            },
          }
        : {}),
    };
  }

  function deploymentView(d: FakeDeployment, withStatus: boolean) {
    return {
      // hash: the manifest version, sha256 of the manifest JSON the create returned (console deployment-writer create()).
      deployment: { id: { owner: d.owner, dseq: d.dseq }, state: d.state, hash: createHash('sha256').update(d.manifest).digest('base64'), created_at: d.createdAt },
      leases: d.leases.map((l) => leaseView(d, l, withStatus)),
      escrow_account: { id: { scope: 'deployment', xid: `${d.owner}/${d.dseq}` }, state: { owner: d.owner, state: d.state === 'active' ? 'open' : 'closed', transferred: [], settled_at: '0', funds: [], deposits: [] } },
    };
  }

  const handler = async (req: import('node:http').IncomingMessage, url: URL, raw: Buffer): Promise<FakeReply> => {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (method === 'GET' && path === '/health') return { status: 200, body: { status: 'ok' } };
    if (req.headers['x-api-key'] !== apiKey) return err(401, 'UnauthorizedError', 'Unauthorized');

    if (method === 'POST' && path === '/v1/deployments') {
      const sdl = jsonBody(raw)?.data?.sdl;
      if (typeof sdl !== 'string' || !sdl.includes('version:')) return err(400, 'BadRequestError', 'Invalid SDL');
      if (opts.echoSdlInError) return err(400, 'BadRequestError', `SDL rejected: ${sdl.slice(0, 2000)}`);
      const dseq = String(nextDseq++);
      const manifest = JSON.stringify([{ name: 'dcloud', services: [{ name: 'agent', sdl }] }]);
      deployments.set(dseq, {
        dseq, owner: OWNER, sdl, name: jsonBody(raw)?.data?.name, manifest, state: 'active',
        createdAt: new Date().toISOString(), bidPolls: 0, bids: [], leases: [],
      });
      counts.deploymentsCreated++;
      return { status: 201, body: { data: { dseq, manifest, signTx: { code: 0, transactionHash: `TX${dseq}`, rawLog: '' } } } };
    }

    if (method === 'GET' && path === '/v1/deployments') {
      const skip = Number(url.searchParams.get('skip') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 1000);
      const all = [...deployments.values()];
      const page = all.slice(skip, skip + limit).map((d) => deploymentView(d, false));
      return { status: 200, body: { data: { deployments: page, pagination: { total: all.length, skip, limit, hasMore: skip + limit < all.length } } } };
    }

    let m = /^\/v1\/deployments\/([^/]+)$/.exec(path);
    if (m) {
      const d = deployments.get(m[1]!);
      if (!d) return err(404, 'NotFoundError', 'Deployment not found');
      if (method === 'GET') {
        for (const l of d.leases) {
          l.statusPolls++;
          if (opts.insufficientFunds === 'status' && l.state === 'active') l.state = 'insufficient_funds';
        }
        if (opts.sdlReadBack === false) return { status: 200, body: { data: deploymentView(d, true) } };
        return { status: 200, body: { data: { ...deploymentView(d, true), consoleSettings: { sdl: d.sdl, manifestVersion: 'dmVyc2lvbg==' } } } };
      }
      if (method === 'DELETE') {
        if (d.state === 'closed') return err(400, 'BadRequestError', 'Deployment already closed');
        d.state = 'closed';
        for (const l of d.leases) l.state = 'closed';
        counts.closes++;
        await d.agent?.destroy();
        return { status: 200, body: { data: { success: true } } };
      }
    }

    if (method === 'GET' && path === '/v1/bids') {
      const d = deployments.get(url.searchParams.get('dseq') ?? '');
      if (!d) return { status: 200, body: { data: [] } };
      d.bidPolls++;
      if (d.bids.length === 0 && !opts.noBids && d.state === 'active' && d.bidPolls >= (opts.bidsAfterPolls ?? 1)) {
        const offered = opts.bids ?? [{ provider: 'akash1providerexpensive', amount: '5' }, { provider: 'akash1providercheap', amount: '3' }];
        d.bids = offered.map((b) => ({ ...b, denom: b.denom ?? 'uakt', state: 'open', gseq: 1, oseq: 1 }));
      }
      const data = d.bids.map((b, i) => ({
        bid: {
          id: { owner: d.owner, dseq: d.dseq, gseq: b.gseq, oseq: b.oseq, provider: b.provider, bseq: i },
          state: b.state,
          price: { denom: b.denom, amount: b.amount },
          created_at: d.createdAt,
          resources_offer: [],
        },
        escrow_account: {},
      }));
      return { status: 200, body: { data } };
    }

    if (method === 'POST' && path === '/v1/leases') {
      const body = jsonBody(raw);
      const want = body?.leases?.[0];
      const d = deployments.get(String(want?.dseq ?? ''));
      if (!d) return err(404, 'NotFoundError', 'Deployment not found');
      if (typeof body?.manifest !== 'string' || body.manifest !== d.manifest) return err(400, 'BadRequestError', 'Manifest does not match the deployment');
      if (d.state !== 'active') return err(400, 'BadRequestError', 'Deployment closed');
      if (d.leases.some((l) => l.state === 'active')) return err(400, 'BadRequestError', 'Lease already exists');
      const bid = d.bids.find((b) => b.provider === want.provider && b.gseq === want.gseq && b.oseq === want.oseq);
      if (!bid) return err(400, 'BadRequestError', 'Bid not found');
      if (opts.loseBid) bid.state = 'lost';
      if (bid.state !== 'open') return err(400, 'BadRequestError', `Bid not open (state ${bid.state})`);
      if (opts.insufficientFunds === 'lease') return err(400, 'BadRequestError', 'Failed to sign and broadcast tx: insufficient funds: 0uakt is smaller than 500000uakt');
      for (const b of d.bids) b.state = b === bid ? 'active' : 'closed';
      d.leases.push({ gseq: bid.gseq, oseq: bid.oseq, provider: bid.provider, state: 'active', price: { denom: bid.denom!, amount: bid.amount }, statusPolls: 0 });
      counts.leasesCreated++;
      if (opts.runAgents) {
        d.agent = await RemoteAgent.create({ kind: 'nginx-ingress', tls: opts.runAgents.tls });
        const svc = sdlService(d.sdl);
        for (const mount of svc.mounts) d.agent.volume(mount);
        void d.agent.start({ ...svc.env, ...opts.runAgents.env });
      }
      return { status: 200, body: { data: deploymentView(d, false) } };
    }

    return err(404, 'NotFoundError', `No route ${method} ${path}`);
  };

  self = await startFakeServer(handler, opts.faults ?? []);
  return {
    ...self,
    opts,
    deployments,
    counts,
    activeDeployments: () => [...deployments.values()].filter((d) => d.state === 'active'),
    async restartAgent(dseq) {
      await deployments.get(dseq)?.agent?.restart();
    },
    async close() {
      for (const d of deployments.values()) await d.agent?.destroy();
      await self.close();
    },
  };
}

/**
 * The agent service of an SDL as the provider reads it: env lines split at the first "=",
 * and the mount points of its persistent storage (params.storage.<name>.mount where the
 * profile's storage entry of that name has attributes.persistent).
 */
export function sdlService(sdl: string): { env: Record<string, string>; mounts: string[] } {
  const yaml = createRequire(import.meta.url)('js-yaml') as { load(s: string): any };
  const doc = yaml.load(sdl);
  const [name, svc] = Object.entries<any>(doc.services)[0]!;
  const env: Record<string, string> = {};
  for (const line of (svc.env ?? []) as string[]) {
    const i = line.indexOf('=');
    env[i < 0 ? line : line.slice(0, i)] = i < 0 ? '' : line.slice(i + 1);
  }
  const profile = doc.deployment?.[name] ? (Object.values<any>(doc.deployment[name])[0]?.profile ?? name) : name;
  const storage = doc.profiles?.compute?.[profile]?.resources?.storage;
  const entries: any[] = Array.isArray(storage) ? storage : storage ? [storage] : [];
  const mounts: string[] = [];
  for (const [vol, p] of Object.entries<any>(svc.params?.storage ?? {})) {
    const entry = entries.find((e) => (e.name ?? 'default') === vol);
    if (entry?.attributes?.persistent === true && typeof p?.mount === 'string') mounts.push(p.mount);
  }
  return { env, mounts };
}
