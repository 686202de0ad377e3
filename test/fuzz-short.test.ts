import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './fuzz/fuzz.js';

/**
 * The fuzzer in short (2,000 cases, no slow uWS probes), so `npm run fuzz` cannot rot. The full
 * run is a command: `npm run fuzz -- --requests=100000`.
 */
test('fuzz: 2,000 generated malformed requests and WS frames; no 5xx, crash or hang, spec errors, data intact', { timeout: 120_000 }, async () => {
  const r = await runFuzz({ requests: 2000, probes: false });
  assert.equal(r.failure, undefined, r.failure ? `${r.failure.message}\n${r.failure.repro}` : '');
  assert.deepEqual(r.afterRun, []);
  assert.equal(r.requests, 2000);
  assert.ok(r.wsCases > 50 && r.httpCases > 1500, `${r.httpCases} HTTP, ${r.wsCases} WS`);
});
