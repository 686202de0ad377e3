import fs from 'node:fs';
import path from 'node:path';
import { defaultSessionPath, saveSession, type SavedSession } from '../src/sdk/session-file.js';
import { parseArgs } from './args.js';
import { signPersonal } from '../src/auth/evm-signature.js';
import { readWalletKey } from './wallet.js';

export const LOGIN_HELP = `Usage: panthers login --key FILE --nft ID [--url http://127.0.0.1:3000] [--save [FILE]]

Signs in to a running server with an EVM key file (from \`panthers wallet new\`): asks for a
challenge, signs it (EIP-191 personal_sign), verifies it, and prints the tokens as JSON.
--save writes them (mode 0600) to FILE, default <PANTHERS_DATA_DIR or ./data>/session.json, where
\`panthers deploy\`, \`status\`, \`stop\` and \`chat\` read them.`;

export async function loginCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv);
  if (flags.help) {
    console.log(LOGIN_HELP);
    return 0;
  }
  const keyFile = flags.key;
  const nft = flags.nft;
  const base = (typeof flags.url === 'string' ? flags.url : 'http://127.0.0.1:3000').replace(/\/+$/, '');
  if (typeof keyFile !== 'string' || typeof nft !== 'string') {
    console.error(LOGIN_HELP);
    return 2;
  }
  const mode = fs.statSync(keyFile).mode & 0o077;
  if (mode !== 0) console.error(`panthers: warning: ${keyFile} is readable by other users (chmod 600 it)`);
  const { address, privateKey } = readWalletKey(keyFile);

  const challenge = await post(base, '/v1/auth/challenge', { wallet_address: address, nft_token_id: nft });
  if (!challenge.ok) return fail('challenge', challenge.body);
  const message = String(challenge.body.message);
  const signature = signPersonal(message, privateKey);
  const verified = await post(base, '/v1/auth/verify', { wallet_address: address, nft_token_id: nft, signature, message });
  if (!verified.ok) return fail('verify', verified.body);
  const tokens = { wallet_address: address, nft_token_id: nft, ...verified.body };
  console.log(JSON.stringify(tokens, null, 2));
  if (flags.save) {
    const file = typeof flags.save === 'string' ? flags.save : defaultSessionPath(path.resolve(process.env.PANTHERS_DATA_DIR || './data'));
    saveSession(file, { url: base, ...tokens, access_expires_at: Date.now() + Number(verified.body.expires_in) * 1000 } as SavedSession);
    console.error(`panthers: session saved to ${file}`);
  }
  return 0;
}

async function post(base: string, path: string, body: unknown): Promise<{ ok: boolean; body: Record<string, any> }> {
  let res: Response;
  try {
    res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  } catch (e) {
    throw new Error(`cannot reach ${base}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`);
  }
  const text = await res.text();
  let parsed: Record<string, any>;
  try {
    parsed = JSON.parse(text) as Record<string, any>;
  } catch {
    parsed = { error: { code: `HTTP_${res.status}`, message: text.slice(0, 200) } };
  }
  return { ok: res.ok, body: parsed };
}

function fail(step: string, body: Record<string, any>): number {
  const err = body.error ?? {};
  console.error(`panthers: ${step} refused: ${err.code ?? 'ERROR'}: ${err.message ?? JSON.stringify(body)}`);
  return 1;
}
