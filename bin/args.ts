/** Parses `--name value`, `--name=value` and `--flag` into a map; the rest are positionals. */
export function parseArgs(argv: string[]): { flags: Record<string, string | true>; positionals: string[] } {
  const flags: Record<string, string | true> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags[a.slice(2, eq)] = a.slice(eq + 1);
      else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) flags[a.slice(2)] = argv[++i]!;
      else flags[a.slice(2)] = true;
    } else positionals.push(a);
  }
  return { flags, positionals };
}

/** Maps serve flags onto the env var names the config reads (`--port 80` -> PORT=80). */
export const FLAG_TO_ENV: Record<string, string> = {
  port: 'PORT',
  host: 'HOST',
  'data-dir': 'PANTHERS_DATA_DIR',
  'database-url': 'PANTHERS_DATABASE_URL',
  'public-url': 'PANTHERS_PUBLIC_URL',
  ownership: 'PANTHERS_OWNERSHIP',
  'owners-file': 'PANTHERS_OWNERS_FILE',
  'evm-rpc-url': 'PANTHERS_EVM_RPC_URL',
  'nft-contract': 'PANTHERS_NFT_CONTRACT',
  'chain-id': 'PANTHERS_CHAIN_ID',
  'rate-limits': 'PANTHERS_RATE_LIMITS',
  'log-level': 'LOG_LEVEL',
  pretty: 'LOG_PRETTY',
  model: 'PANTHERS_MODEL',
  env: 'PANTHERS_ENV',
  'cors-origins': 'PANTHERS_CORS_ORIGINS',
  'trusted-proxies': 'PANTHERS_TRUSTED_PROXIES',
  'body-limit': 'PANTHERS_BODY_LIMIT',
};

export function envWithFlags(flags: Record<string, string | true>, env: Record<string, string | undefined> = process.env): Record<string, string | undefined> {
  const out = { ...env };
  for (const [flag, value] of Object.entries(flags)) {
    const name = FLAG_TO_ENV[flag];
    if (!name) throw new Error(`unknown option --${flag}`);
    out[name] = value === true ? 'true' : value;
  }
  return out;
}
