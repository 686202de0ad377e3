import type { Config } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import { assignOwner, listOwners } from '../adapters/ownership/registry.js';
import { canonicalWallet, walletKind } from '../src/auth/wallet-signature.js';
import { envWithFlags, parseArgs } from './args.js';

export const NFT_HELP = `Usage: panthers nft assign <token_id> <owner_address> [--data-dir DIR]
       panthers nft list [--data-dir DIR]

Manages the local NFT registry (PANTHERS_OWNERSHIP=registry): who owns which NFT. Opens the
SQLite file of the data dir directly, so it works with the server running or stopped.`;

const TOKEN_ID = /^[A-Za-z0-9_-]{1,78}$/;

export async function nftCommand(argv: string[], loadConfig: (env: Record<string, string | undefined>) => Config): Promise<number> {
  const { flags, positionals } = parseArgs(argv);
  const [action, ...rest] = positionals;
  if (flags.help || (action !== 'assign' && action !== 'list')) {
    console.log(NFT_HELP);
    return flags.help ? 0 : 2;
  }
  const { dataDir } = loadConfig(envWithFlags(flags));
  if (action === 'assign') {
    const [token, owner] = rest;
    if (rest.length !== 2 || !token || !owner) {
      console.error(NFT_HELP);
      return 2;
    }
    if (!TOKEN_ID.test(token)) {
      console.error(`panthers: token id must be 1-78 letters, digits, _ or -: "${token}"`);
      return 2;
    }
    if (walletKind(owner) === undefined) {
      console.error(`panthers: owner must be a 0x EVM address or a secret1 bech32 address: "${owner}"`);
      return 2;
    }
    const db = openDatabase(dataDir);
    try {
      assignOwner(db, token, canonicalWallet(owner));
    } finally {
      db.close();
    }
    console.log(JSON.stringify({ nft_token_id: token, owner: canonicalWallet(owner) }));
    return 0;
  }
  const db = openDatabase(dataDir);
  try {
    const rows = listOwners(db);
    console.log(JSON.stringify(rows.map((r) => ({ nft_token_id: r.nft_token_id, owner: r.owner, updated_at: new Date(r.updated_at).toISOString() })), null, 2));
  } finally {
    db.close();
  }
  return 0;
}
