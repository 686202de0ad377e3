import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSoak } from './soak/soak.js';

/**
 * The crash soak in short (3 kill -9 cycles), so `npm run soak` cannot rot. The full run is a
 * command: `npm run soak -- --cycles=100`.
 *
 * KNOWN lists violation kinds the soak finds on code that has not yet received their fix, each
 * with its owner; a kind leaves the list when the fix is merged.
 */
const KNOWN = new Set<string>([
  // (empty: "signed out by a cut refresh", found on the code before 13a's refresh grace window,
  // left the list when that fix was merged)
]);

test('soak: 3 kill -9 cycles under a mixed workload, every acknowledged effect checked', { timeout: 120_000 }, async () => {
  const r = await runSoak({ cycles: 3, minRunMs: 300, maxRunMs: 900, chatNfts: 4, deployNfts: 3 });
  assert.equal(r.cycles, 3);
  assert.ok(r.acknowledgedWritesChecked >= 50, `acknowledged writes checked: ${r.acknowledgedWritesChecked}`);
  for (const op of ['chat', 'chat (sse)', 'refresh']) assert.ok((r.operations[op]?.ok ?? 0) > 0, `some ${op} acknowledged: ${JSON.stringify(r.operations)}`);
  assert.equal(r.restartToHealthMs.all.length, 4, 'the first start and three restarts');
  assert.ok(r.restartToHealthMs.max < 10_000);
  const unexpected = r.violations.filter((v) => !KNOWN.has(v.kind));
  assert.deepEqual(unexpected, [], 'no violation');
});

// ('duplicated' and 'truncated' in the cluster soak, a forwarded turn resent to the shard's next
// owner after the first stored it and died, left with the shared turn-id dedupe: messages.turn_id,
// migration 10; two cluster soaks of 12 and 30 cycles found no violation.)

test('soak --cluster: 3 cycles, each kill -9s one of three nodes on PostgreSQL + NATS', { timeout: 180_000 }, async (t) => {
  let r;
  try {
    r = await runSoak({ cluster: true, cycles: 3, minRunMs: 500, maxRunMs: 1200, chatNfts: 4, deployNfts: 3 });
  } catch (e) {
    if (/cluster mode is not available/i.test(String((e as Error).message))) return t.skip('cluster mode not available yet');
    throw e;
  }
  assert.equal(r.cycles, 3);
  assert.ok(r.acknowledgedWritesChecked >= 30, `acknowledged writes checked: ${r.acknowledgedWritesChecked}`);
  for (const op of ['chat', 'chat (sse)', 'refresh']) assert.ok((r.operations[op]?.ok ?? 0) > 0, `some ${op} acknowledged: ${JSON.stringify(r.operations)}`);
  assert.equal(r.restartToHealthMs.all.length, 6, 'three first starts and three restarts');
  assert.deepEqual(r.violations.filter((v) => !KNOWN.has(v.kind)), [], 'no violation');
});
