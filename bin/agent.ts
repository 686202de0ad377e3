import type { Config } from '../src/config.js';
import { createAgentApp, characterFromEnv } from '../src/agent-app.js';
import { envWithFlags, parseArgs, FLAG_TO_ENV } from './args.js';
import { runUntilSignal } from './run-until-signal.js';
import { dropPrivileges } from '../src/run-as.js';

export const AGENT_HELP = `Usage: panthers agent --nft ID [--port 8080] [options]

Runs one NFT's agent alone, with its own SQLite in the data dir: the Agent API (health, info,
auth/challenge, auth/verify, chat, chat/history, chat/clear, /ws) at / and /v1. This is what a
remote provider starts in its container. Environment:
  PANTHERS_AGENT_NFT                the NFT (or --nft)
  PORT (default 8080), HOST         where to listen (a container sets HOST=0.0.0.0)
  PANTHERS_ORCHESTRATOR_URL         the orchestrator: accept its agent-scoped tokens for this NFT
  PANTHERS_AGENT_CREDENTIAL         this deployment's credential (revocations, registry ownership)
  PANTHERS_ORCHESTRATOR_JWKS_URL    its keys (default: <orchestrator>/.well-known/jwks.json)
  PANTHERS_AGENT_REVOCATION_POLL_MS, PANTHERS_AGENT_REVOCATION_MAX_STALE_MS  (2000, 30000)
  PANTHERS_AGENT_NAME, PANTHERS_AGENT_SYSTEM_PROMPT, PANTHERS_AGENT_MODEL, PANTHERS_AGENT_CAPABILITIES
  PANTHERS_MODEL, PANTHERS_OPENAI_*, PANTHERS_OLLAMA_*   the model backend
  PANTHERS_INGRESS                  none | http (Akash's ingress) | tls (SecretVM's Traefik)
  PANTHERS_RUN_AS                   uid:gid to drop to after taking ownership of the data dir
                                    (when started as root: the image sets 1000:1000, user node)
Options map onto the same variables as \`panthers serve\`:
${Object.entries(FLAG_TO_ENV).map(([f, e]) => `  --${f.padEnd(16)} ${e}`).join('\n')}`;

export async function agent(argv: string[], loadConfig: (env: Record<string, string | undefined>) => Config): Promise<number> {
  const { flags } = parseArgs(argv);
  if (flags.help) {
    console.log(AGENT_HELP);
    return 0;
  }
  const nftFlag = flags.nft;
  delete flags.nft;
  const env = envWithFlags(flags);
  env.PORT ??= '8080';
  const nft = typeof nftFlag === 'string' ? nftFlag : env.PANTHERS_AGENT_NFT;
  if (!nft) {
    console.error('panthers agent: --nft ID (or PANTHERS_AGENT_NFT) is required');
    return 2;
  }
  const config = loadConfig(env);
  // Before anything opens a file: the data dir may be a root-owned volume.
  dropPrivileges(env.PANTHERS_RUN_AS, config.dataDir);
  const app = await createAgentApp(config, { nft, character: characterFromEnv(env) });
  await app.start();
  await runUntilSignal(app, app.log);
  return 0;
}
