import type { Config } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import type { NftOwnerStore } from '../src/auth/nft-owner-store.js';
import { SqliteNftOwnerStore } from '../src/auth/nft-owner-store.sqlite.js';
import { PgNftOwnerStore } from '../src/auth/nft-owner-store.pg.js';
import { openPg, migratePg } from '../src/db/pg.js';
import { canonicalWallet, walletKind } from '../src/auth/wallet-signature.js';
import { envWithFlags, parseArgs } from './args.js';

export const NFT_HELP = `Usage: panthers nft assign <token_id> <owner_address> [--data-dir DIR]
       panthers nft list [--data-dir DIR]

Manages the local NFT registry (PANTHERS_OWNERSHIP=registry): who owns which NFT. Opens the
SQLite file of the data dir directly, so it works with the server running or stopped; with
PANTHERS_DATABASE_URL set, the cluster's PostgreSQL registry instead (every node sees it).`;

const TOKEN_ID = /^[A-Za-z0-9_-]{1,78}$/;

export async function nftCommand(argv: string[], loadConfig: (env: Record<string, string | undefined>) => Config): Promise<number> {
  const { flags, positionals } = parseArgs(argv);
  const [action, ...rest] = positionals;
  if (flags.help || (action !== 'assign' && action !== 'list')) {
    console.log(NFT_HELP);
    return flags.help ? 0 : 2;
  }
  const env = envWithFlags(flags);
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
    const { store, close } = await openOwnerStore(env, loadConfig);
    try {
      await store.assign(token, canonicalWallet(owner), Date.now());
    } finally {
      await close();
    }
    console.log(JSON.stringify({ nft_token_id: token, owner: canonicalWallet(owner) }));
    return 0;
  }
  const { store, close } = await openOwnerStore(env, loadConfig);
  try {
    const rows = await store.all();
    console.log(JSON.stringify(rows.map((r) => ({ nft_token_id: r.nft_token_id, owner: r.owner, updated_at: new Date(r.updated_at).toISOString() })), null, 2));
  } finally {
    await close();
  }
  return 0;
}

/** The registry the command edits: the data dir's SQLite file, or the cluster's PostgreSQL. */
async function openOwnerStore(
  env: Record<string, string | undefined>,
  loadConfig: (env: Record<string, string | undefined>) => Config,
): Promise<{ store: NftOwnerStore; close(): Promise<void> }> {
  if (env.PANTHERS_DATABASE_URL) {
    const sql = openPg(env.PANTHERS_DATABASE_URL, { max: 1 });
    await migratePg(sql);
    return { store: new PgNftOwnerStore(sql), close: () => sql.end({ timeout: 5 }) };
  }
  const db = openDatabase(loadConfig(env).dataDir);
  return { store: new SqliteNftOwnerStore(db), close: async () => void db.close() };
}
