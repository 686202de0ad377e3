import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { DeploymentsStore, Deployment } from '../../src/deployments/deployments-store.js';
import { FencedError } from '../../src/db/fence.js';
import { ApiError } from '../../src/errors.js';
import type { StoreEngine } from '../helpers/store-engines.js';

let n = 0;
function deployment(nft: string, over: Partial<Deployment> = {}): Deployment {
  const now = 1_764_000_000_000 + ++n;
  return {
    id: randomUUID(), nft_token_id: nft, wallet: '0xabc', provider: 'local', status: 'pending', progress: 0, endpoint_url: null,
    resources: { cpu: 1, memory_mb: 512, disk_mb: 1024, gpu: 0 }, agent: { name: 'A', system_prompt: 'hi', model: 'scripted', capabilities: ['chat'] },
    provider_ref: null, details: null, error: null, health: null, created_at: now, updated_at: now, ...over,
  };
}

/** The DeploymentsStore contract: the same behaviour on every engine. */
export function deploymentsContract(engine: () => Promise<StoreEngine<DeploymentsStore>>): void {
  test('insert, save and saveRef read back, with events in order, from this and a second connection', async () => {
    const e = await engine();
    try {
      const s = e.store;
      assert.equal(await s.latest('d1'), undefined);
      assert.equal(s.peekLatest('d1') ?? null, null);
      const d = deployment('d1');
      const ev0 = await s.insert(d, 'queued');
      assert.equal(ev0.message, 'queued');
      d.status = 'deploying';
      d.progress = 40;
      d.updated_at++;
      const ev1 = await s.save(d, 'deploying');
      assert.ok(ev1 && ev1.id > ev0.id);
      d.health = { ok: true, latency_ms: 3, message: 'ok', checked_at: new Date(0).toISOString() };
      assert.equal(await s.save(d), undefined);
      await s.saveRef('d1', d.id, { id: 'r-1' }, d.updated_at + 1);
      for (const store of [s, e.second()]) {
        const got = (await store.latest('d1'))!;
        assert.equal(got.id, d.id);
        assert.equal(got.status, 'deploying');
        assert.equal(got.progress, 40);
        assert.deepEqual(got.provider_ref, { id: 'r-1' });
        assert.deepEqual(got.health, d.health);
        assert.deepEqual(got.resources, d.resources);
        assert.deepEqual((await store.byId(d.id))!.provider_ref, { id: 'r-1' });
        assert.deepEqual((await store.events(d.id)).map((x) => [x.status, x.progress, x.message]), [['pending', 0, 'queued'], ['deploying', 40, 'deploying']]);
        const json = JSON.parse((await store.latestViewJson('d1'))!);
        assert.equal(json.deployment_id, d.id);
        assert.equal(await store.activeCount(), 1);
        assert.deepEqual(await store.unfinishedNfts(), ['d1']);
      }
      assert.equal(JSON.parse(e.store.peekLatestViewJson('d1')!).deployment_id, d.id);
    } finally {
      await e.close();
    }
  });

  test('at most one live deployment per NFT; the latest is the newest, ties by insertion', async () => {
    const e = await engine();
    try {
      const s = e.store;
      const a = deployment('d2');
      await s.insert(a, 'a');
      await assert.rejects(s.insert(deployment('d2'), 'b'), (err) => err instanceof ApiError && err.code === 'ALREADY_EXISTS');
      a.status = 'failed';
      await s.save(a, 'failed');
      const b = deployment('d2', { created_at: a.created_at, updated_at: a.updated_at });
      await s.insert(b, 'b');
      assert.equal((await s.latest('d2'))!.id, b.id);
      assert.equal((await e.second().latest('d2'))!.id, b.id);
    } finally {
      await e.close();
    }
  });

  test('writes of one deployment commit in the order they were made (a ref saved while a transition is in flight lands after it)', async () => {
    const e = await engine();
    try {
      const s = e.store;
      const d = deployment('o1');
      await s.insert(d, 'queued');
      const writes: Promise<unknown>[] = [];
      for (let i = 1; i <= 20; i++) {
        writes.push(s.save({ ...d, status: 'deploying', progress: i, updated_at: d.updated_at + i }, `step ${i}`));
        writes.push(s.saveRef('o1', d.id, { id: `r-${i}` }, d.updated_at + i));
      }
      await Promise.all(writes);
      const got = (await e.second().byId(d.id))!;
      assert.equal(got.progress, 20);
      assert.deepEqual(got.provider_ref, { id: 'r-20' });
      assert.deepEqual((await e.second().events(d.id)).map((x) => x.progress), [0, ...Array.from({ length: 20 }, (_, i) => i + 1)]);
    } finally {
      await e.close();
    }
  });

  test('list filters, sorts, pages; candidateNfts finds deployed NFTs', async () => {
    const e = await engine();
    try {
      const s = e.store;
      for (const [nft, provider] of [['l1', 'local'], ['l2', 'akash'], ['l3', 'local']] as const) await s.insert(deployment(nft, { provider }), 'q');
      const all = await s.list({ nfts: ['l1', 'l2', 'l3'], sort: 'created_at', order: 'asc', limit: 10, offset: 0 });
      assert.deepEqual(all.rows.map((r) => r.nft_token_id), ['l1', 'l2', 'l3']);
      assert.equal(all.total, 3);
      const page = await s.list({ nfts: ['l1', 'l2', 'l3'], provider: 'local', sort: 'nft_token_id', order: 'desc', limit: 1, offset: 0 });
      assert.deepEqual(page.rows.map((r) => r.nft_token_id), ['l3']);
      assert.equal(page.total, 2);
      assert.deepEqual((await s.list({ nfts: [], sort: 'created_at', order: 'asc', limit: 10, offset: 0 })).total, 0);
      assert.deepEqual((await s.candidateNfts('0xABC')).sort(), ['l1', 'l2', 'l3']);
    } finally {
      await e.close();
    }
  });

  test('fenced writes are refused once the lease moved (epoch bumped), and nothing is written', async (t) => {
    const e = await engine();
    try {
      if (!e.fenceFor || !e.moveLease) {
        t.skip('one process is the only writer: fences are ignored');
        return;
      }
      const s = e.store;
      const fence = await e.fenceFor('f1');
      const d = deployment('f1');
      await s.insert(d, 'queued', fence);
      d.status = 'deploying';
      d.progress = 10;
      await s.save(d, 'step', fence);
      await e.moveLease('f1');
      const stale = { ...d, status: 'running' as const, progress: 100 };
      await assert.rejects(s.save(stale, 'running', fence), FencedError);
      await assert.rejects(s.saveRef('f1', d.id, { id: 'late' }, 1, fence), FencedError);
      await assert.rejects(s.insert(deployment('f1b'), 'x', { ...fence }), FencedError);
      const other = e.second();
      const got = (await other.latest('f1'))!;
      assert.equal(got.status, 'deploying');
      assert.equal(got.provider_ref, null);
      assert.equal((await other.events(d.id)).length, 2);
      assert.equal(await other.latest('f1b'), undefined);
      // The new owner writes at its epoch; the old epoch cannot overwrite it.
      const newer = await e.fenceFor('f1');
      d.status = 'running';
      await s.save(d, 'new owner', newer);
      await assert.rejects(s.save({ ...d, status: 'failed' }, 'old', fence), FencedError);
      assert.equal((await other.byId(d.id))!.status, 'running');
    } finally {
      await e.close();
    }
  });
}
