import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProviderSecretsStore } from '../../src/deployments/provider-secrets-store.js';
import { FencedError } from '../../src/db/fence.js';
import type { StoreEngine } from '../helpers/store-engines.js';

/** The ProviderSecretsStore contract: the same behaviour on every engine. */
export function providerSecretsContract(engine: () => Promise<StoreEngine<ProviderSecretsStore>>): void {
  test('a secret reads back (from a second connection too), is replaced, and deleted', async () => {
    const e = await engine();
    try {
      const s = e.store;
      assert.equal(await s.get('dep-1'), undefined);
      await s.set('dep-1', 'manifest with KEY=1');
      assert.equal(await s.get('dep-1'), 'manifest with KEY=1');
      await s.set('dep-1', 'manifest v2');
      assert.equal(await e.second().get('dep-1'), 'manifest v2');
      await s.set('dep-1', null);
      assert.equal(await e.second().get('dep-1'), undefined);
    } finally {
      await e.close();
    }
  });

  test('fenced writes are refused once the lease moved, and nothing is written', async (t) => {
    const e = await engine();
    try {
      if (!e.fenceFor || !e.moveLease) {
        t.skip('one process is the only writer: fences are ignored');
        return;
      }
      const fence = await e.fenceFor('s1');
      await e.store.set('dep-2', 'v1', fence);
      await e.moveLease('s1');
      await assert.rejects(e.store.set('dep-2', 'v2', fence), FencedError);
      await assert.rejects(e.store.set('dep-2', null, fence), FencedError);
      assert.equal(await e.second().get('dep-2'), 'v1');
    } finally {
      await e.close();
    }
  });
}
