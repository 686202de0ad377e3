import { parseArgs } from './args.js';
import type { CommandEnv } from './commands.js';
import { cliSession, describeError } from '../src/sdk/cli-session.js';
import type { DeploymentStatus, Provider } from '../src/sdk/types.js';

export const STATUS_HELP = `Usage: panthers status [--nft ID] [--url URL] [--session FILE] [--data-dir DIR]
       panthers status --all [--status S] [--provider P] [--limit N] [--offset N]

Prints the deployment of an NFT (default: the session's NFT) as JSON, or with --all every
deployment of the signed-in wallet.`;

export async function statusCommand(argv: string[], env: CommandEnv): Promise<number> {
  const { flags } = parseArgs(argv);
  if (flags.help) {
    console.log(STATUS_HELP);
    return 0;
  }
  const { client, nft } = cliSession(flags, () => env.loadConfig().dataDir);
  const str = (k: string) => (typeof flags[k] === 'string' ? (flags[k] as string) : undefined);
  try {
    if (flags.all) {
      const list = await client.deployments.list({
        status: str('status') as DeploymentStatus | undefined,
        provider: str('provider') as Provider | undefined,
        limit: str('limit') === undefined ? undefined : Number(str('limit')),
        offset: str('offset') === undefined ? undefined : Number(str('offset')),
      });
      console.log(JSON.stringify(list, null, 2));
      return 0;
    }
    if (!nft) {
      console.error(STATUS_HELP);
      return 2;
    }
    console.log(JSON.stringify(await client.deployments.get(nft), null, 2));
    return 0;
  } catch (e) {
    console.error(`panthers: ${describeError(e)}`);
    return 1;
  }
}
