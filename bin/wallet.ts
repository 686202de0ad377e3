import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../src/config.js';
import { evmAddressOfPrivateKey, newEvmKey } from '../src/auth/evm-signature.js';
import { envWithFlags, parseArgs } from './args.js';

export const WALLET_HELP = `Usage: panthers wallet new [--data-dir DIR]

Creates a new EVM (secp256k1) key, writes it to <data dir>/wallets/<address>.json (mode 0600)
and prints its address and file path as JSON. Use the file with \`panthers login --key FILE\`.`;

/** The key file `wallet new` writes and `login` reads. */
export interface WalletKeyFile {
  type: 'evm';
  address: string;
  private_key: string;
  created_at: string;
}

export async function walletCommand(argv: string[], loadConfig: (env: Record<string, string | undefined>) => Config): Promise<number> {
  const { flags, positionals } = parseArgs(argv);
  if (flags.help || positionals[0] !== 'new' || positionals.length !== 1) {
    console.log(WALLET_HELP);
    return flags.help ? 0 : 2;
  }
  const { dataDir } = loadConfig(envWithFlags(flags));
  const dir = path.join(dataDir, 'wallets');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = newEvmKey();
  const file = path.join(dir, `${key.address}.json`);
  const body: WalletKeyFile = {
    type: 'evm',
    address: key.address,
    private_key: '0x' + Buffer.from(key.privateKey).toString('hex'),
    created_at: new Date().toISOString(),
  };
  // wx + 0600: never overwrite a key, never let other users read it.
  fs.writeFileSync(file, JSON.stringify(body, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  console.log(JSON.stringify({ address: key.address, key_file: file }, null, 2));
  return 0;
}

/** Reads a key file written by `wallet new` (or a file holding just the 0x hex private key). */
export function readWalletKey(file: string): { address: string; privateKey: Uint8Array } {
  const text = fs.readFileSync(file, 'utf8').trim();
  let hex: string;
  if (text.startsWith('{')) {
    const parsed = JSON.parse(text) as Partial<WalletKeyFile>;
    if (typeof parsed.private_key !== 'string') throw new Error(`${file} has no private_key`);
    hex = parsed.private_key;
  } else {
    hex = text;
  }
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`${file} does not hold a 32-byte hex private key`);
  const privateKey = new Uint8Array(Buffer.from(hex.replace(/^0x/, ''), 'hex'));
  return { address: evmAddressOfPrivateKey(privateKey), privateKey };
}
