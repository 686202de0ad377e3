import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { startFakeServer, type Fault, type FakeReply, type FakeServer } from './fault-injection.js';

/**
 * A local SecretVM REST API (SecretFoundation/docs secretvm-rest-api.md, scrtlabs/secretvm-cli):
 * Bearer auth, multipart create, bare JSON VM objects, 402 for an empty balance.
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
  polls: number;
  createdAt: string;
}

export interface FakeSecretVm extends FakeServer {
  opts: FakeSecretVmOptions;
  vms: Map<string, FakeVm>;
  counts: { vmsCreated: number; terminations: number };
  liveVms(): FakeVm[];
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
        polls: 0, createdAt: new Date().toISOString(),
      };
      vms.set(vmId, vm);
      counts.vmsCreated++;
      return { status: 200, body: view(vm) };
    }

    if (method === 'GET' && path === '/api/vm/instances') return { status: 200, body: [...vms.values()].map(view) };

    const m = /^\/api\/vm\/([^/]+)(\/terminate)?$/.exec(path);
    if (m) {
      const vm = find(decodeURIComponent(m[1]!));
      if (!vm) return err(404, 'VM not found');
      if (method === 'GET' && !m[2]) {
        vm.polls++;
        if (vm.status === 'creating' && !opts.neverReady && vm.polls >= (opts.readyAfterPolls ?? 1)) {
          if (opts.bootStatus) vm.status = opts.bootStatus;
          else {
            vm.status = opts.runningStatus ?? 'running';
            vm.vmDomain = `${vm.vmId}.vm.secretvm.test`;
          }
        }
        return { status: 200, body: view(vm) };
      }
      if (method === 'DELETE' && m[2]) {
        if (vm.status !== 'terminated') counts.terminations++;
        vm.status = 'terminated';
        return { status: 200, body: { status: 'success', message: 'VM terminated' } };
      }
    }
    return err(404, `No route ${method} ${path}`);
  };

  const server = await startFakeServer(handler, opts.faults ?? []);
  return {
    ...server,
    opts,
    vms,
    counts,
    liveVms: () => [...vms.values()].filter((v) => v.status !== 'terminated'),
  };
}
