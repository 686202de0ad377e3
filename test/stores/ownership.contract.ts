import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreEngine } from '../helpers/state-engines.js';
import type { Storage } from '../../src/db/storage.js';
import { execFile } from 'node:child_process';
import { RegistryOwnership } from '../../adapters/ownership/registry.js';
import { CLI } from '../helpers/server.js';

/** The NFT registry, the EVM block cursor and the transfer wipe. */
export function ownershipContract(open: () => Promise<StoreEngine>): void {
  let engine: StoreEngine;
  let a: Storage;
  let b: Storage;
  before(async () => {
    engine = await open();
    a = engine.node();
    b = engine.node();
  });
  after(() => engine.close());

  test('registry: assign, owner, owned by (any case), all; version changes when another node writes', async () => {
    const v0 = await a.nftOwners.version();
    await b.nftOwners.assign('7', '0xAbC', 1000);
    await b.nftOwners.assign('10', '0xabc', 1001);
    await b.nftOwners.assign('8', '0xdef', 1002);
    assert.notEqual(await a.nftOwners.version(), v0);
    assert.equal(await a.nftOwners.ownerOf('7'), '0xAbC');
    assert.equal(await a.nftOwners.ownerOf('9'), undefined);
    assert.deepEqual(await a.nftOwners.ownedBy('0xabc'), ['10', '7']);
    const v1 = await a.nftOwners.version();
    await b.nftOwners.assign('7', '0xdef', 1003);
    assert.notEqual(await a.nftOwners.version(), v1, 'a reassignment is a change');
    assert.deepEqual((await a.nftOwners.all()).map((r) => [r.nft_token_id, r.owner]), [['10', '0xabc'], ['7', '0xdef'], ['8', '0xdef']]);
  });

  test('RegistryOwnership over the store sees another node\'s reassignment as a change', async () => {
    const reg = new RegistryOwnership(a.nftOwners);
    await reg.changes(); // the first call takes the snapshot
    assert.equal(await reg.ownerOf('8'), '0xdef');
    await b.nftOwners.assign('8', '0x123', Date.now());
    assert.deepEqual((await reg.changes()).ids, ['8']);
    await new Promise((r) => setTimeout(r, 60)); // past the version check interval
    assert.equal(await reg.ownerOf('8'), '0x123');
  });

  test('panthers nft assign/list with PANTHERS_DATABASE_URL edit the cluster registry', async (t) => {
    if (!engine.url) return t.skip('SQLite: covered by auth-cli and ownership-transfer (the data dir)');
    const cli = (...args: string[]) => new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [CLI, ...args], { env: { ...process.env, PANTHERS_DATABASE_URL: engine.url }, timeout: 20_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout));
    });
    const wallet = '0x' + 'ab'.repeat(20);
    const assigned = JSON.parse(await cli('nft', 'assign', '4242', wallet)) as { nft_token_id: string; owner: string };
    assert.deepEqual([assigned.nft_token_id, assigned.owner.toLowerCase()], ['4242', wallet]);
    assert.equal((await a.nftOwners.ownerOf('4242'))?.toLowerCase(), wallet, 'every node reads it');
    const listed = JSON.parse(await cli('nft', 'list')) as { nft_token_id: string }[];
    assert.ok(listed.some((r) => r.nft_token_id === '4242'));
  });

  test('block cursor: none, then set, read from another node, only forward', async () => {
    const ca = a.blockCursor('evm:1:0xc');
    const cb = b.blockCursor('evm:1:0xc');
    assert.equal(await ca.get(), undefined);
    await ca.set(100);
    assert.equal(await cb.get(), 100);
    await cb.set(150);
    assert.equal(await ca.get(), 150);
    assert.equal(await a.blockCursor('evm:1:0xother').get(), undefined);
  });

  test('transfer wipe: the NFT\'s conversations of other wallets go with their messages', async () => {
    const ins = engine.kind === 'sqlite'
      ? ["INSERT INTO conversations (id, nft_token_id, wallet, created_at, updated_at) VALUES ('c1','7','0xOld',1,1), ('c2','7','0xNew',1,1), ('c3','8','0xOld',1,1)",
         "INSERT INTO messages (conversation_id, role, content, created_at) VALUES ('c1','user','a',1), ('c1','assistant','b',1), ('c2','user','c',1), ('c3','user','d',1)"]
      : ["INSERT INTO conversations (id, nft_token_id, wallet, created_at, updated_at) VALUES ('c1','7','0xOld',1,1), ('c2','7','0xNew',1,1), ('c3','8','0xOld',1,1)",
         "INSERT INTO messages (conversation_id, role, content, created_at) VALUES ('c1','user','a',1), ('c1','assistant','b',1), ('c2','user','c',1), ('c3','user','d',1)"];
    for (const q of ins) await engine.query(q);
    assert.equal(await b.transfers.wipeConversations('7', '0xnew'), 1);
    const left = await engine.query<{ conversation_id: string }>('SELECT conversation_id FROM messages ORDER BY conversation_id');
    assert.deepEqual(left.map((r) => r.conversation_id), ['c2', 'c3']);
    assert.equal(await a.transfers.wipeConversations('7', ''), 1, 'nobody owns it: every conversation goes');
  });
}
