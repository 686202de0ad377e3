import test from 'node:test';
import assert from 'node:assert/strict';
import { EvmOwnership } from '../adapters/ownership/evm.js';
import { sqliteBlockCursor } from '../adapters/ownership/block-cursor.js';
import { openDatabase } from '../src/db/database.js';
import { tempDir } from './helpers/server.js';
import { newEvmWallet } from './helpers/wallets.js';
import { FakeEvmRpc } from './fakes/evm-rpc.js';

test('evm changes(): Transfer logs after a persisted cursor, in capped ranges, committed only when acted on', async () => {
  const rpc = await new FakeEvmRpc().start();
  const db = openDatabase(tempDir());
  try {
    const cursor = sqliteBlockCursor(db, 'evm:1:test');
    const v = new EvmOwnership({ rpcUrl: rpc.url, contract: rpc.contract, chainId: 1, cursor, maxLogRange: 10 });
    assert.deepEqual((await v.changes()).ids, [], 'the first call starts at the head');
    assert.equal(cursor.get(), rpc.head);

    rpc.transfer(5n, newEvmWallet().address);
    rpc.transfer(2n ** 200n, newEvmWallet().address);
    const c = await v.changes();
    assert.deepEqual(c.ids.sort(), ['5', (2n ** 200n).toString()].sort());
    assert.equal(cursor.get(), 100, 'not committed yet: a crash now re-reads these blocks');
    c.commit!();
    assert.equal(cursor.get(), rpc.head);

    // 25 empty blocks, then a transfer: reached in ranges of at most 10 blocks.
    rpc.mine(25);
    rpc.transfer(6n, newEvmWallet().address);
    const seen: string[] = [];
    for (let i = 0; i < 4 && !seen.includes('6'); i++) {
      const step = await v.changes();
      seen.push(...step.ids);
      step.commit?.();
    }
    assert.deepEqual(seen, ['6']);

    // A node refusing the range: SERVICE_UNAVAILABLE, cursor unchanged, next range smaller.
    const before = cursor.get();
    rpc.mine(30);
    rpc.failCalls = { code: -32005, message: 'query returned more than 10000 results' };
    await assert.rejects(v.changes(), (e: any) => e.code === 'SERVICE_UNAVAILABLE');
    assert.equal(cursor.get(), before);
    rpc.failCalls = undefined;
    const methodsBefore = rpc.methods.length;
    const next = await v.changes();
    next.commit!();
    assert.equal(cursor.get(), before! + 5, 'the range was halved (10 -> 5)');
    assert.ok(rpc.methods.length > methodsBefore);
  } finally {
    db.close();
    await rpc.stop();
  }
});
