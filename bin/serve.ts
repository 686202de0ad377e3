import type { Config } from '../src/config.js';
import { createApp } from '../src/app.js';
import { envWithFlags, parseArgs, FLAG_TO_ENV } from './args.js';
import { runUntilSignal } from './run-until-signal.js';

export const SERVE_HELP = `Usage: panthers serve [options]

Starts the orchestrator (HTTP + WebSocket) on its configured host and port.
Every option has an environment variable of the same meaning:
${Object.entries(FLAG_TO_ENV).map(([f, e]) => `  --${f.padEnd(16)} ${e}`).join('\n')}`;

/** Runs the server until SIGTERM/SIGINT, then shuts down gracefully. */
export async function serve(argv: string[], loadConfig: (env: Record<string, string | undefined>) => Config): Promise<number> {
  const { flags } = parseArgs(argv);
  if (flags.help) {
    console.log(SERVE_HELP);
    return 0;
  }
  const config = loadConfig(envWithFlags(flags));
  const app = await createApp(config);
  await app.start();
  await runUntilSignal(app, app.ctx.log);
  return 0;
}
