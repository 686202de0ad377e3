import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { request } from './server.js';
import { openPg } from '../../src/db/pg.js';
import { PgNftOwnerStore } from '../../src/auth/nft-owner-store.pg.js';
import { newEvmWallet, type EvmTestWallet } from './wallets.js';

/**
 * Signs in against a server running as a child process (its registry table is written directly).
 * `registry`: the server's data dir (SQLite), or a cluster's `postgres://` URL (PostgreSQL holds
 * the registry every node reads).
 */
export async function signInProcess(url: string, registry: string, nft: string, wallet: EvmTestWallet = newEvmWallet()): Promise<string> {
  if (/^postgres(ql)?:\/\//.test(registry)) {
    const sql = openPg(registry, { max: 1 });
    try {
      await new PgNftOwnerStore(sql).assign(nft, wallet.address, Date.now());
    } finally {
      await sql.end({ timeout: 1 });
    }
  } else {
    const db = new Database(path.join(registry, 'panthers.db'));
    try {
      db.prepare('INSERT OR REPLACE INTO nft_owners (nft_token_id, owner, updated_at) VALUES (?, ?, ?)').run(nft, wallet.address, Date.now());
    } finally {
      db.close();
    }
  }
  const ch = await request(url, 'POST', '/v1/auth/challenge', { body: { wallet_address: wallet.address, nft_token_id: nft } });
  assert.equal(ch.status, 200, ch.text);
  const vr = await request(url, 'POST', '/v1/auth/verify', {
    body: { wallet_address: wallet.address, nft_token_id: nft, signature: await wallet.sign(ch.body.message), message: ch.body.message },
  });
  assert.equal(vr.status, 200, vr.text);
  return vr.body.access_token;
}
