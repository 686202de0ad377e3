import type { Config } from '../src/config.js';
import { serve } from './serve.js';
import { audit } from './audit.js';

export interface CommandEnv {
  loadConfig(env?: Record<string, string | undefined>): Config;
}

export interface Command {
  summary: string;
  /** loads uWebSockets.js (refuses to run on its slow JS fallback) */
  needsServer?: boolean;
  run(argv: string[], env: CommandEnv): Promise<number>;
}

/** Every `panthers` subcommand, by name. */
export const commands: Record<string, Command> = {
  serve: {
    summary: 'start the orchestrator server',
    needsServer: true,
    run: (argv, env) => serve(argv, env.loadConfig),
  },
  audit: {
    summary: 'verify the hash-chained audit log, or tail it',
    run: (argv) => audit(argv),
  },
};
