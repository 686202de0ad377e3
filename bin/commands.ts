import type { Config } from '../src/config.js';
import { serve } from './serve.js';
import { agent } from './agent.js';
import { walletCommand } from './wallet.js';
import { loginCommand } from './login.js';
import { nftCommand } from './nft.js';
import { audit } from './audit.js';
import { deployCommand } from './deploy.js';
import { statusCommand } from './status.js';
import { stopCommand } from './stop.js';
import { chatCommand } from './chat.js';
import { migrateCommand } from './migrate.js';

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
  agent: {
    summary: 'run one NFT agent alone (what a remote provider starts)',
    needsServer: true,
    run: (argv, env) => agent(argv, env.loadConfig),
  },
  wallet: {
    summary: 'create an EVM key file to sign in with (wallet new)',
    run: (argv, env) => walletCommand(argv, env.loadConfig),
  },
  login: {
    summary: 'sign in to a running server with a key file; prints the tokens',
    run: (argv) => loginCommand(argv),
  },
  nft: {
    summary: 'assign or list NFT owners in the local registry (nft assign|list)',
    run: (argv, env) => nftCommand(argv, env.loadConfig),
  },
  audit: {
    summary: 'verify the hash-chained audit log, or tail it',
    run: (argv) => audit(argv),
  },
  deploy: {
    summary: "deploy an NFT's agent and show its progress until it runs",
    run: (argv, env) => deployCommand(argv, env),
  },
  status: {
    summary: "show an NFT's deployment (or --all of them)",
    run: (argv, env) => statusCommand(argv, env),
  },
  stop: {
    summary: "stop an NFT's deployment",
    run: (argv, env) => stopCommand(argv, env),
  },
  chat: {
    summary: "chat with an NFT's agent (interactive, or --message for one)",
    run: (argv, env) => chatCommand(argv, env),
  },
  migrate: {
    summary: 'apply schema migrations (PostgreSQL at PANTHERS_DATABASE_URL, else the SQLite data dir); prints the version',
    run: (argv) => migrateCommand(argv),
  },
};
