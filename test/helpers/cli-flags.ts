import { parseArgs } from '../../bin/args.js';

/** The flags of a test tool's command line (`--name=value`), read with the CLI's own parser. */
export function cliFlags(argv = process.argv.slice(2)) {
  const { flags } = parseArgs(argv);
  return {
    has: (name: string) => flags[name] !== undefined,
    /** A whole number >= 0, or dflt; anything else ends the process with status 2. */
    num(name: string, dflt?: number): number | undefined {
      const raw = flags[name];
      if (raw === undefined) return dflt;
      const n = Number(raw);
      if (raw === true || !Number.isInteger(n) || n < 0) {
        console.error(`--${name} must be a whole number, got "${raw}"`);
        process.exit(2);
      }
      return n;
    },
  };
}
