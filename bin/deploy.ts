import { parseArgs } from './args.js';
import type { CommandEnv } from './commands.js';
import { cliSession, describeError } from '../src/sdk/cli-session.js';
import type { DeploymentUpdate, Provider } from '../src/sdk/types.js';

export const DEPLOY_HELP = `Usage: panthers deploy [--nft ID] [--provider local|akash|secret_vm] [--timeout SECONDS]
                       [--url URL] [--session FILE] [--data-dir DIR]

Deploys the agent of an NFT with the session saved by \`panthers login\` and shows its progress
until it is running (exit 0) or has failed (exit 1). --nft defaults to the session's NFT.`;

const PROVIDERS: Provider[] = ['local', 'akash', 'secret_vm'];
const BAR_WIDTH = 24;

export async function deployCommand(argv: string[], env: CommandEnv): Promise<number> {
  const { flags } = parseArgs(argv);
  if (flags.help) {
    console.log(DEPLOY_HELP);
    return 0;
  }
  const provider = (typeof flags.provider === 'string' ? flags.provider : 'local') as Provider;
  if (!PROVIDERS.includes(provider)) {
    console.error(`panthers: --provider must be one of ${PROVIDERS.join(', ')}`);
    return 2;
  }
  const { client, nft } = cliSession(flags, () => env.loadConfig().dataDir);
  if (!nft) {
    console.error(DEPLOY_HELP);
    return 2;
  }
  const timeoutSec = typeof flags.timeout === 'string' ? Number(flags.timeout) : provider === 'local' ? 60 : 1800;
  const bar = new ProgressBar(process.stdout);
  try {
    const created = await client.deployments.create({ nft_token_id: nft, provider });
    console.log(`Deployment ${created.deployment_id} of NFT ${nft} accepted (${provider}, about ${created.estimated_time} s)`);
    for await (const u of client.deployments.watch(nft, { signal: AbortSignal.timeout(timeoutSec * 1000) })) {
      // Updates of an earlier deployment of this NFT (a stale snapshot) are not this one's.
      if (u.deployment_id !== created.deployment_id) continue;
      bar.update(u);
      if (u.status === 'running') {
        bar.done();
        console.log(`Running: ${u.endpoint_url ?? '(no endpoint)'}`);
        return 0;
      }
      if (u.status === 'failed' || u.status === 'stopped') {
        bar.done();
        const d = await client.deployments.get(nft).catch(() => undefined);
        console.error(`panthers: deployment ${u.status}: ${d?.error ?? u.message}`);
        return 1;
      }
    }
    bar.done();
    console.error('panthers: the deployment watch ended before the agent was running');
    return 1;
  } catch (e) {
    bar.done();
    if ((e as Error).name === 'TimeoutError') console.error(`panthers: not running after ${timeoutSec} s; see \`panthers status --nft ${nft}\``);
    else console.error(`panthers: ${describeError(e)}`);
    return 1;
  }
}

/**
 * Deployment progress: one line redrawn in place on a terminal; on a pipe or file, one plain
 * line per change (what a log or a test can read).
 */
class ProgressBar {
  private last = '';
  private drawn = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(u: DeploymentUpdate): void {
    const pct = Math.max(0, Math.min(100, Math.round(u.progress)));
    const filled = Math.round((pct / 100) * BAR_WIDTH);
    const line = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(pct).padStart(3)}% ${u.status}${u.message ? `: ${u.message}` : ''}`;
    if (line === this.last) return;
    this.last = line;
    if (this.out.isTTY) {
      const cols = this.out.columns || 80;
      this.out.write(`\r\x1b[2K${line.slice(0, cols - 1)}`);
      this.drawn = true;
    } else {
      this.out.write(line + '\n');
    }
  }

  /** Ends the redrawn line so what follows starts on its own. */
  done(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
