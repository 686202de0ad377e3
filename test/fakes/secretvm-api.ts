import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { startFakeServer, type Fault, type FakeReply, type FakeServer } from './fault-injection.js';
import { parseDotenv, substitute } from './compose-env.js';
import { RemoteAgent } from './remote-agent.js';

/**
 * A local SecretVM REST API (SecretFoundation/docs secretvm-rest-api.md, scrtlabs/secretvm-cli):
 * Bearer auth, multipart create, bare JSON VM objects, 402 for an empty balance.
 *
 * With `runAgents`, the VM does what SecretVM does with the upload: secrets_plaintext becomes
 * the .env next to the compose file and `docker compose up` runs it, so the agent service's
 * environment is the compose file's, interpolated from the .env (and the VM's own DOMAIN_NAME,
 * which secretvm-cli's --tls labels rely on) the way compose-go does (compose-env.ts). The
 * agent runs as the image runs it (container.ts) with its named volumes; the compose file's
 * Traefik service is played by a TLS proxy (ingress-proxy.ts) at vmDomain, present only when
 * the file has one routing Host(`$DOMAIN_NAME`) on websecure to the agent. Stop/start keep the
 * volumes when fs_persistence=1; terminate ends the process and deletes them.
 *
 * `journal` (from fault-injection.ts) lists every call as { method, path, query, body, status };
 * a multipart body is its fields (the compose file as text).
 *
 * Checked against scrtlabs/secretvm-cli@94f38b52 src/commands/vm/create.ts (form fields
 * dockercompose, name, vmTypeId, secrets_plaintext, fs_persistence=1; the --tls Traefik
 * service and its Host(`$DOMAIN_NAME`) labels) and compose-spec/compose-go@e70e961c.
 */

export interface FakeSecretVmOptions {
  apiKey?: string;
  /** the VM reports running after this many GET /api/vm/:id polls (default 1) */
  readyAfterPolls?: number;
  neverReady?: boolean;
  /** the VM ends in this status instead of running (e.g. 'failed') */
  bootStatus?: string;
  /** the word the API uses for a running VM (status strings are opaque; default 'running') */
  runningStatus?: string;
  /** POST /api/vm/create answers 402 */
  insufficientFunds?: boolean;
  faults?: Fault[];
  /** run the compose file's agent for real behind a Traefik-like TLS proxy */
  runAgents?: { tls: { key: string; cert: string }; env?: Record<string, string> };
}

export interface FakeVm {
  id: string;
  vmId: string;
  name: string;
  nameFromUser: string;
  vmTypeId: string;
  environment: string;
  status: string;
  vmDomain: string | null;
  /** what the create sent, kept so tests can check where the secrets went */
  dockerCompose: string;
  secretsPlaintext: string;
  fsPersistence: boolean;
  polls: number;
  createdAt: string;
  /** the running agent service (runAgents) */
  agent?: RemoteAgent;
  /** why the compose file could not run (runAgents), e.g. an interpolation error */
  composeError?: string;
}

export interface FakeSecretVm extends FakeServer {
  opts: FakeSecretVmOptions;
  vms: Map<string, FakeVm>;
  counts: { vmsCreated: number; terminations: number };
  liveVms(): FakeVm[];
}

/** What `docker compose up` would give the agent service: its environment and named volumes. */
export function composeAgent(compose: string, dotenv: string, vmEnv: Record<string, string>): { env: Record<string, string>; volumes: string[]; tlsPort: number | undefined } {
  const yaml = createRequire(import.meta.url)('js-yaml') as { load(s: string): any };
  const doc = yaml.load(compose);
  const vars = parseDotenv(dotenv, (k) => vmEnv[k]);
  const lookup = (k: string) => vmEnv[k] ?? vars[k];
  const agent = doc.services?.agent;
  if (!agent) throw new Error('the compose file has no agent service');
  const env: Record<string, string> = {};
  const raw = agent.environment ?? {};
  const pairs: Array<[string, string]> = Array.isArray(raw)
    ? raw.map((l: string) => [l.split('=')[0]!, l.slice(l.indexOf('=') + 1)] as [string, string])
    : Object.entries(raw).map(([k, v]) => [k, v == null ? '' : String(v)] as [string, string]);
  for (const [k, v] of pairs) env[k] = substitute(v, lookup);
  const volumes = ((agent.volumes ?? []) as string[]).map((v) => substitute(v, lookup)).filter((v) => !v.startsWith('/') && !v.startsWith('.'));
  // TLS only as the file configures it: a Traefik service on :443 and a websecure router to us.
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries<string>(agent.labels ?? {})) labels[k] = substitute(String(v), lookup);
  const traefik = doc.services?.traefik;
  const websecure = traefik && ((traefik.command ?? []) as string[]).some((c) => substitute(c, lookup) === '--entrypoints.websecure.address=:443');
  const routed = labels['traefik.enable'] === 'true' && Object.entries(labels).some(([k, v]) => /^traefik\.http\.routers\.[^.]+\.entrypoints$/.test(k) && v === 'websecure')
    && Object.entries(labels).some(([k, v]) => /^traefik\.http\.routers\.[^.]+\.rule$/.test(k) && v === `Host(\`${vmEnv.DOMAIN_NAME}\`)`);
  const port = Number(labels['traefik.http.services.agent.loadbalancer.server.port'] ?? NaN);
  return { env, volumes: volumes.map((v) => v.split(':')[1]!).filter(Boolean), tlsPort: websecure && routed && Number.isFinite(port) ? port : undefined };
}

export async function startFakeSecretVm(opts: FakeSecretVmOptions = {}): Promise<FakeSecretVm> {
  const apiKey = opts.apiKey ?? 'test-secretvm-key';
  const vms = new Map<string, FakeVm>();
  const counts = { vmsCreated: 0, terminations: 0 };
  let next = 4100;

  const err = (status: number, message: string): FakeReply => ({ status, body: { error: message, message } });
  const find = (key: string) => vms.get(key) ?? [...vms.values()].find((v) => v.id === key);
  const view = (vm: FakeVm) => ({
    id: vm.id, vmId: vm.vmId, name: vm.name, nameFromUser: vm.nameFromUser, user: 'user-1', vmTypeId: vm.vmTypeId,
    hostId: 'host-1', ip_address: vm.vmDomain ? '10.0.0.7' : null, vmDomain: vm.vmDomain, createdAt: vm.createdAt,
    updatedAt: vm.createdAt, status: vm.status, state: vm.status, docker_file: vm.dockerCompose,
  });

  const handler = async (req: IncomingMessage, url: URL, raw: Buffer): Promise<FakeReply> => {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (req.headers.authorization !== `Bearer ${apiKey}`) return err(401, 'Unauthorized');

    if (method === 'POST' && path === '/api/vm/create') {
      let form: FormData;
      try {
        form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': req.headers['content-type'] ?? '' }, body: raw }).formData();
      } catch {
        return err(400, 'Expected multipart/form-data');
      }
      const compose = form.get('dockercompose');
      const name = form.get('name');
      const vmTypeId = form.get('vmTypeId');
      if (!(compose instanceof Blob) || typeof name !== 'string' || !name) return err(400, 'dockercompose file and name are required');
      if (vmTypeId !== 'small' && vmTypeId !== 'medium' && vmTypeId !== 'large') return err(400, 'Invalid vmTypeId');
      if (opts.insufficientFunds) return err(402, 'Insufficient balance to create this VM');
      const vmId = String(next++);
      const vm: FakeVm = {
        id: randomUUID(), vmId, name: `vm-${vmId}`, nameFromUser: name, vmTypeId,
        environment: String(form.get('environment') ?? ''), status: 'creating', vmDomain: null,
        dockerCompose: await compose.text(), secretsPlaintext: String(form.get('secrets_plaintext') ?? ''),
        fsPersistence: form.get('fs_persistence') === '1',
        polls: 0, createdAt: new Date().toISOString(),
      };
      vms.set(vmId, vm);
      counts.vmsCreated++;
      if (opts.runAgents) await bootAgent(vm);
      return { status: 200, body: view(vm) };
    }

    if (method === 'GET' && path === '/api/vm/instances') return { status: 200, body: [...vms.values()].map(view) };

    const m = /^\/api\/vm\/([^/]+)(\/terminate|\/stop|\/start)?$/.exec(path);
    if (m) {
      const vm = find(decodeURIComponent(m[1]!));
      if (!vm) return err(404, 'VM not found');
      if (method === 'GET' && !m[2]) {
        vm.polls++;
        if (vm.composeError && vm.status === 'creating') vm.status = 'failed';
        if (vm.status === 'creating' && !opts.neverReady && vm.polls >= (opts.readyAfterPolls ?? 1) && (!vm.agent || vm.agent.ready())) {
          if (opts.bootStatus) vm.status = opts.bootStatus;
          else {
            vm.status = opts.runningStatus ?? 'running';
            vm.vmDomain = vm.agent ? vm.agent.ingress.host : `${vm.vmId}.vm.secretvm.test`;
          }
        }
        return { status: 200, body: view(vm) };
      }
      if (method === 'POST' && m[2] === '/stop') {
        await vm.agent?.stopContainer();
        // Without fs_persistence the VM's disk does not outlive a stop.
        if (vm.agent && !vm.fsPersistence) for (const dir of Object.values(vm.agent.mounts)) (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
        vm.status = 'stopped';
        return { status: 200, body: { status: 'success', message: 'VM stopped' } };
      }
      if (method === 'POST' && m[2] === '/start') {
        if (vm.agent) await vm.agent.start(vm.agent.env);
        vm.status = opts.runningStatus ?? 'running';
        return { status: 200, body: { status: 'success', message: 'VM started' } };
      }
      if (method === 'DELETE' && m[2] === '/terminate') {
        if (vm.status !== 'terminated') counts.terminations++;
        vm.status = 'terminated';
        await vm.agent?.destroy();
        return { status: 200, body: { status: 'success', message: 'VM terminated' } };
      }
    }
    return err(404, `No route ${method} ${path}`);
  };

  async function bootAgent(vm: FakeVm): Promise<void> {
    vm.agent = await RemoteAgent.create({ kind: 'traefik', tls: opts.runAgents!.tls });
    const domain = vm.agent.ingress.host;
    try {
      const svc = composeAgent(vm.dockerCompose, vm.secretsPlaintext, { DOMAIN_NAME: domain });
      for (const v of svc.volumes) vm.agent.volume(v);
      // No Traefik route in the file: nothing serves TLS at the domain.
      if (svc.tlsPort === undefined) await vm.agent.ingress.close();
      void vm.agent.start({ ...svc.env, ...opts.runAgents!.env });
    } catch (e) {
      vm.composeError = (e as Error).message;
    }
  }

  const server = await startFakeServer(handler, opts.faults ?? []);
  return {
    ...server,
    async close() {
      for (const vm of vms.values()) await vm.agent?.destroy();
      await server.close();
    },
    opts,
    vms,
    counts,
    liveVms: () => [...vms.values()].filter((v) => v.status !== 'terminated'),
  };
}
