import { HttpClient, ProviderHttpError, type RetryPolicy, type CallLimiter } from '../http-client.js';
import type { Logger } from '../../../src/logger.js';

/**
 * The SecretVM REST API (secretai.scrtlabs.com), the calls the adapter makes. Shapes follow
 * SecretFoundation/docs secretvm-rest-api.md and scrtlabs/secretvm-cli (types.d.ts): bare JSON
 * objects, though a { data } wrapper is accepted too.
 */

export interface VmInstance {
  id?: string;
  vmId?: string;
  name?: string;
  nameFromUser?: string | null;
  status?: string;
  state?: string;
  vmDomain?: string | null;
  ip_address?: string | null;
  vmTypeId?: string;
}

export interface CreateVmInput {
  name: string;
  vmTypeId: string;
  dockerCompose: string;
  secretsPlaintext: string;
  environment: 'dev' | 'prod';
  /** fs_persistence=1: the VM's filesystem survives restarts */
  fsPersistence?: boolean;
}

export class SecretVmApi {
  readonly http: HttpClient;

  constructor(baseUrl: string, apiKey: () => string, timeoutMs: number, log: Logger, retry?: Partial<RetryPolicy>, limit?: CallLimiter) {
    this.http = new HttpClient({ service: 'SecretVM', baseUrl, headers: () => ({ authorization: `Bearer ${apiKey()}` }), timeoutMs, log, retry, limit });
  }

  async createVm(input: CreateVmInput, signal?: AbortSignal): Promise<VmInstance> {
    const form = new FormData();
    form.set('dockercompose', new Blob([input.dockerCompose], { type: 'application/x-yaml' }), 'docker-compose.yml');
    form.set('name', input.name);
    form.set('vmTypeId', input.vmTypeId);
    if (input.secretsPlaintext) form.set('secrets_plaintext', input.secretsPlaintext);
    form.set('environment', input.environment);
    // secretvm-cli `vm create --persistence` sends fs_persistence=1: the VM's disk (and so the
    // agent's named volume) survives a VM restart.
    if (input.fsPersistence) form.set('fs_persistence', '1');
    const res = await this.http.request('POST', '/api/vm/create', { form, signal });
    const vm = unwrap(res.body) as VmInstance;
    if (!vm || typeof vm !== 'object' || (!vm.id && !vm.vmId)) {
      throw new ProviderHttpError('SecretVM POST /api/vm/create answered without a VM id', 'POST', '/api/vm/create', res.status, undefined, false, true);
    }
    return vm;
  }

  async listVms(signal?: AbortSignal): Promise<VmInstance[]> {
    const res = await this.http.request('GET', '/api/vm/instances', { signal });
    const list = unwrap(res.body);
    return Array.isArray(list) ? (list as VmInstance[]) : [];
  }

  /** undefined when the VM is unknown (404). */
  async getVm(id: string, signal?: AbortSignal): Promise<VmInstance | undefined> {
    try {
      const res = await this.http.request('GET', `/api/vm/${encodeURIComponent(id)}`, { signal });
      return unwrap(res.body) as VmInstance;
    } catch (e) {
      if (e instanceof ProviderHttpError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** Terminates the VM; an unknown VM counts as terminated. */
  async terminateVm(id: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.http.request('DELETE', `/api/vm/${encodeURIComponent(id)}/terminate`, { signal });
    } catch (e) {
      if (e instanceof ProviderHttpError && e.status === 404) return;
      throw e;
    }
  }
}

function unwrap(body: unknown): unknown {
  if (body && typeof body === 'object' && !Array.isArray(body) && 'data' in body && !('id' in body)) return (body as { data: unknown }).data;
  return body;
}

/** The id the VM routes take: the short vmId the CLI shows, else the UUID. */
export function vmRouteId(vm: VmInstance): string | undefined {
  const id = vm.vmId ?? vm.id;
  return id === undefined || id === null || id === '' ? undefined : String(id);
}

export type VmState = 'running' | 'deploying' | 'stopped' | 'failed';

/**
 * SecretVM's status strings are not documented: mapped defensively, the raw value is kept by
 * the caller. Failure words win over the others ("start failed" is a failure).
 */
export function mapVmStatus(vm: VmInstance): VmState {
  const raw = vm.status || vm.state || '';
  if (/fail|error|crash/i.test(raw)) return 'failed';
  if (/stop|terminat|delet|destroy|shut/i.test(raw)) return 'stopped';
  if (/\b(running|active|up|online|ready)\b/i.test(raw)) return 'running';
  return 'deploying';
}
