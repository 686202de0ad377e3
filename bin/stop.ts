import { parseArgs } from './args.js';
import type { CommandEnv } from './commands.js';
import { cliSession, describeError } from '../src/sdk/cli-session.js';

export const STOP_HELP = `Usage: panthers stop [--nft ID] [--wait] [--url URL] [--session FILE] [--data-dir DIR]

Stops the deployment of an NFT (default: the session's NFT) and prints the answer as JSON.
With --wait, returns once it is stopped.`;

export async function stopCommand(argv: string[], env: CommandEnv): Promise<number> {
  const { flags } = parseArgs(argv);
  if (flags.help) {
    console.log(STOP_HELP);
    return 0;
  }
  const { client, nft } = cliSession(flags, () => env.loadConfig().dataDir);
  if (!nft) {
    console.error(STOP_HELP);
    return 2;
  }
  try {
    const r = await client.deployments.stop(nft);
    if (flags.wait && r.status !== 'stopped' && r.status !== 'failed') {
      for await (const u of client.deployments.watch(nft, { signal: AbortSignal.timeout(120_000) })) {
        if (u.deployment_id === r.deployment_id && (u.status === 'stopped' || u.status === 'failed')) {
          r.status = u.status;
          break;
        }
      }
    }
    console.log(JSON.stringify(r, null, 2));
    return 0;
  } catch (e) {
    console.error(`panthers: ${describeError(e)}`);
    return 1;
  }
}
