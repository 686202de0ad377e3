import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase } from '../src/db/database.js';
import { AuditLog, rowContent, verifyAuditChain } from '../src/guards/audit-log.js';
import { createLogger } from '../src/logger.js';
import { tempDir } from './helpers/server.js';

// The audit engine's write path (issue 15): the content a row's hash covers is built without
// JSON.stringify, so it must be byte for byte what JSON.stringify gives, or old chains break.

test('rowContent is exactly JSON.stringify of the row, for plain and awkward values', () => {
  const base = {
    id: 7, ts: 1764600000123, request_id: 'b3c0f8e4-1d2a-4c4e-9d8a-2f1e0c9b7a65', wallet: '0xabc', nft_token_id: '4242',
    method: 'GET', route: '/deployments/:nft_token_id', status: 200, client_ip: '203.0.113.5', duration_ms: 0.125,
  };
  const cases = [
    base,
    { ...base, wallet: null, nft_token_id: null, client_ip: null },
    { ...base, request_id: 'quote"back\\slash', route: '/x\n\ty\u0001', method: 'WS' },
    { ...base, route: 'ünïcødé \u2028 \ud800 lone surrogate', duration_ms: 1e-7, ts: 0, status: 499 },
    { ...base, duration_ms: 12345.678, id: 2 ** 40 },
    { ...base, wallet: undefined as unknown as null, duration_ms: -0 },
  ];
  for (const r of cases) {
    const expected = JSON.stringify([r.id, r.ts, r.request_id, r.wallet, r.nft_token_id, r.method, r.route, r.status, r.client_ip, r.duration_ms]);
    assert.equal(rowContent(r), expected);
  }
  // The later columns are covered only when set (rows from before them keep their hash).
  for (const [crid, count] of [['client-"id"', null], [null, 42], ['k1', 3]] as [string | null, number | null][]) {
    const r = { ...base, client_request_id: crid, count };
    assert.equal(rowContent(r), JSON.stringify([r.id, r.ts, r.request_id, r.wallet, r.nft_token_id, r.method, r.route, r.status, r.client_ip, r.duration_ms, crid, count]));
  }
});

test('batched writes keep the chain verifiable row by row across flushes', () => {
  const dir = tempDir('panthers-audit-engine-');
  const db = openDatabase(dir);
  const audit = new AuditLog({ db, log: createLogger({ level: 'silent' }), batchSize: 1000 });
  for (let n = 0; n < 3; n++) {
    for (let i = 0; i < 250; i++) {
      audit.record({
        ts: Date.now(), requestId: `req-${n}-${i}`, wallet: i % 2 ? '0xabc' : undefined, nft: '1', method: 'GET',
        route: i % 3 ? '/health' : '/x "quoted"', status: 200, ip: '127.0.0.1', durationMs: i / 7,
      });
    }
    assert.equal(audit.flush(), 250);
  }
  assert.deepEqual(verifyAuditChain(db), { ok: true, rows: 750 });
  db.close();
});
