import fs from 'node:fs';
import { runContainer, type RunningContainer } from './container.js';
import { startIngress, type Ingress, type IngressKind } from './ingress-proxy.js';
import { tempDir } from '../helpers/server.js';

/**
 * One remote agent as a provider fake runs it: the image's process (container.ts) with the env
 * the provider was sent, its volumes, and the provider's proxy in front (ingress-proxy.ts).
 * The proxy exists first (its address is the lease URI / VM domain the agent may need to know);
 * it answers 502 until the container listens, as a real ingress does.
 */
export interface RemoteAgentOptions {
  kind: IngressKind;
  tls?: { key: string; cert: string };
}

export class RemoteAgent {
  container: RunningContainer | undefined;
  /** the env the provider gave the container (before the runtime's path/port mapping) */
  env: Record<string, string> = {};
  /** container path -> host dir */
  mounts: Record<string, string> = {};
  starting: Promise<void> | undefined;
  lastError: Error | undefined;
  private stopped = false;

  private constructor(readonly ingress: Ingress) {}

  static async create(opts: RemoteAgentOptions): Promise<RemoteAgent> {
    const ingress = await startIngress({ kind: opts.kind, target: 'http://127.0.0.1:9', tls: opts.tls });
    return new RemoteAgent(ingress);
  }

  /** A host dir for a volume, created once per name (a persistent volume keeps it). */
  volume(containerPath: string): void {
    this.mounts[containerPath] ??= tempDir('panthers-volume-');
  }

  start(env: Record<string, string>): Promise<void> {
    this.env = env;
    this.stopped = false;
    this.starting = runContainer({ env, mounts: this.mounts, name: `agent behind ${this.ingress.kind}` }).then(
      (c) => {
        this.container = c;
        this.ingress.setTarget(c.url);
        if (this.stopped) return c.stop();
      },
      (e: Error) => {
        this.lastError = e;
      },
    );
    return this.starting;
  }

  /** True while the process runs and listens (what a readiness probe would say). */
  ready(): boolean {
    return Boolean(this.container?.running());
  }

  /** The container stops (a pod restart, a VM stop): volumes stay. */
  async stopContainer(): Promise<void> {
    this.stopped = true;
    await this.starting;
    await this.container?.stop();
    this.container = undefined;
  }

  async restart(): Promise<void> {
    await this.stopContainer();
    await this.start(this.env);
  }

  /** Everything goes: the process, the proxy, the volumes. */
  async destroy(): Promise<void> {
    await this.stopContainer();
    await this.ingress.close();
    for (const dir of Object.values(this.mounts)) fs.rmSync(dir, { recursive: true, force: true });
    this.mounts = {};
  }
}
