import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RECORD_WIDTH, rowContent, chainHash, GENESIS_HASH } from '../../src/guards/audit-chain.js';
import type { AuditStore } from '../../src/guards/audit-store.js';

/** One empty chain, reachable through two independent connections, plus raw SQL for tampering. */
export interface AuditStoreFixture {
  a: AuditStore;
  b: AuditStore;
  /** runs one statement on the chain's tables behind the store's back (an attacker's edit) */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** One flat record (RECORD_WIDTH values), as AuditLog.record() queues it. */
export function rec(i: number, over: Partial<Record<'ts' | 'wallet' | 'route' | 'crid' | 'count' | 'ip' | 'duration', unknown>> = {}): unknown[] {
  return [
    over.ts ?? 1_764_600_000_000 + i, `req-${i}`, 'wallet' in over ? over.wallet : '0xabc', '7', 'GET',
    over.route ?? '/v1/deployments/:nft_token_id', 200, 'ip' in over ? over.ip : '127.0.0.1', over.duration ?? i / 7,
    'crid' in over ? over.crid : null, 'count' in over ? over.count : null,
  ];
}
const batch = (from: number, n: number, over = {}) => Array.from({ length: n }, (_, k) => rec(from + k, over)).flat();

/**
 * The AuditStore contract, run against SQLite and PostgreSQL alike: appends chain row by row,
 * what is read back is what was hashed, tampering is found, retention and the size cap keep the
 * chain verifiable, and two writers on two connections append to ONE chain.
 */
export function auditStoreContract(name: string, open: () => Promise<AuditStoreFixture>): void {
  const withFixture = (title: string, fn: (f: AuditStoreFixture) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const f = await open();
      try {
        await fn(f);
      } finally {
        await f.close();
      }
    });

  withFixture('an empty chain verifies; appends link row by row and read back exactly what was hashed', async ({ a }) => {
    assert.deepEqual(await a.verify(), { ok: true, rows: 0 });
    assert.deepEqual(await a.state(), { headId: 0, headHash: GENESIS_HASH, prunedThroughId: 0, prunedThroughHash: GENESIS_HASH });
    const awkward = [
      ...rec(1, { wallet: null, ip: null }),
      ...rec(2, { route: 'quote"back\\slash ünï \u2028', crid: 'client-"id"' }),
      ...rec(3, { count: 42, duration: 0.1234567 }),
      ...rec(4, { ts: 0, duration: 12345.678 }),
    ];
    const r = await a.append(awkward, 0);
    assert.equal(r.appended, 4);
    assert.equal(r.state.headId, 4);
    const rows = await a.tail(10);
    assert.equal(rows.length, 4);
    let prev = GENESIS_HASH;
    for (const row of rows) {
      assert.equal(row.prev_hash, prev);
      assert.equal(row.hash, chainHash(prev, rowContent(row)), `row ${row.id} reads back as hashed`);
      prev = row.hash;
    }
    assert.equal(rows[0]!.wallet, null);
    assert.equal(rows[1]!.route, 'quote"back\\slash ünï \u2028');
    assert.equal(rows[1]!.client_request_id, 'client-"id"');
    assert.equal(rows[2]!.count, 42);
    assert.equal(rows[2]!.duration_ms, 0.123, 'durations are stored rounded to what was hashed');
    assert.equal(typeof rows[3]!.id, 'number');
    assert.equal(r.state.headHash, prev);
    await a.append(batch(5, 300), 0);
    assert.deepEqual(await a.verify(), { ok: true, rows: 304 });
    assert.deepEqual((await a.after(302, 10)).map((x) => x.id), [303, 304]);
  });

  withFixture('an edited, a deleted and a truncated row are each found', async ({ a, exec }) => {
    await a.append(batch(1, 20), 0);
    await exec(`UPDATE audit_log SET status = 500 WHERE id = 7`);
    assert.deepEqual(await a.verify(), { ok: false, rows: 6, firstBadId: 7, reason: 'row 7 content does not match its hash (edited)' });
    await exec(`DELETE FROM audit_log WHERE id = 7`);
    const gap = await a.verify();
    assert.equal(gap.ok, false);
    assert.equal(gap.firstBadId, 8);
    await exec(`DELETE FROM audit_log WHERE id >= 7`);
    const cut = await a.verify();
    assert.equal(cut.ok, false);
    assert.match(cut.reason!, /deleted from the end/);
  });

  withFixture('retention and the size cap prune a prefix and the chain still verifies from the anchor', async ({ a, exec }) => {
    await a.append(batch(1, 50, {}), 0);
    // rows 1..50 have ts base+1..base+50: everything before base+21 goes
    assert.equal(await a.pruneBefore(1_764_600_000_000 + 21), 20);
    assert.deepEqual(await a.verify(), { ok: true, rows: 30 });
    assert.equal((await a.state()).prunedThroughId, 20);
    const r = await a.append(batch(51, 40), 50);
    assert.equal(r.prunedByCap, 20, 'the cap keeps the newest 50');
    assert.equal(r.state.headId - r.state.prunedThroughId, 50);
    assert.deepEqual(await a.verify(), { ok: true, rows: 50 });
    await exec(`DELETE FROM audit_log WHERE id = 41`);
    assert.equal((await a.verify()).firstBadId, 42, 'deleting the first remaining row is not "just retention"');
  });

  withFixture('two writers on two connections append concurrently to one chain', async ({ a, b }) => {
    const rounds = 25;
    const per = 40;
    const writer = async (s: AuditStore, tag: number) => {
      for (let i = 0; i < rounds; i++) await s.append(batch(tag * 100_000 + i * per, per), 0);
    };
    await Promise.all([writer(a, 1), writer(b, 2), writer(a, 3), writer(b, 4)]);
    const total = 4 * rounds * per;
    assert.deepEqual(await a.verify(), { ok: true, rows: total });
    assert.deepEqual(await b.verify(), { ok: true, rows: total });
    const st = await b.state();
    assert.equal(st.headId, total);
    const ids = new Set((await a.tail(total)).map((r) => r.request_id));
    assert.equal(ids.size, total, 'every record is in the chain exactly once');
  });

  test(`${name}: RECORD_WIDTH matches the records this suite builds`, () => {
    assert.equal(rec(0).length, RECORD_WIDTH);
  });
}
