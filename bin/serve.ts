import type { Config } from '../src/config.js';
import { createApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';
import { isPgClosedSocketWrite } from '../src/db/pg.js';
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
  const log = createLogger({ level: config.logLevel, pretty: config.logPretty });
  // From the first line on, as once it serves (run-until-signal.ts): a stray rejection is a bug to
  // log, not a reason to end a start that may well succeed (a link reset at start used to).
  const stray = (err: unknown) => log.error({ err }, 'unhandled promise rejection during start');
  process.on('unhandledRejection', stray);
  // The PostgreSQL client's one known throw from a timer after a link reset (src/db/pg.ts): logged,
  // not fatal. Anything else thrown from a timer still ends the process, as without this handler.
  process.on('uncaughtException', (err) => {
    if (isPgClosedSocketWrite(err)) {
      log.warn({ err: err.message }, 'PostgreSQL client wrote to a connection that had closed (porsager/postgres#1208); its queries were already rejected');
      return;
    }
    // Node's own behaviour for an uncaught exception: the stack on stderr, exit code 1.
    console.error(err);
    process.exit(1);
  });
  let app: Awaited<ReturnType<typeof createApp>>;
  try {
    app = await createApp(config);
    await app.start();
  } catch (e) {
    // A start that failed half-way can leave handles open (a PostgreSQL pool, a NATS client, the
    // audit writer thread): say why and end (the CLI exits with this code) instead of lingering.
    console.error(`panthers: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  } finally {
    process.off('unhandledRejection', stray);
  }
  await runUntilSignal(app, app.ctx.log);
  return 0;
}
