#!/usr/bin/env node
import { ConfigError, loadConfig } from '../src/config.js';
import { assertNativeUws } from '../src/server/uws.js';
import { commands } from './commands.js';

const USAGE = `Usage: panthers <command> [options]

Commands:
${Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`).join('\n')}

Run \`panthers <command> --help\` for a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`panthers: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  if (cmd.needsServer) {
    assertNativeUws();
    const code = await cmd.run(rest, { loadConfig });
    // A server command has stopped gracefully and flushed its logs; library timers (a p-queue
    // interval, undici keep-alive sockets) must not hold the process for seconds more.
    process.exit(code);
  }
  return cmd.run(rest, { loadConfig });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined && code >= 0) process.exitCode = code;
  },
  (e) => {
    if (e instanceof ConfigError) console.error(`panthers: ${e.message}`);
    else console.error(`panthers: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  },
);
