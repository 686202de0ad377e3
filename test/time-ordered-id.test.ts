import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uuidv7 } from '../src/db/time-ordered-id.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('uuidv7: RFC 9562 layout (version 7, variant 10), the given millisecond in its first 48 bits', () => {
  const at = Date.UTC(2026, 11, 3, 7, 45, 0, 123);
  const id = uuidv7(at);
  assert.match(id, V7);
  assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), at);
  // The year-1970 edge pads to 12 hex digits.
  assert.match(uuidv7(1), /^00000000-0001-7/);
});

test('uuidv7: ids sort by creation time across milliseconds, and 200,000 drawn at once (past many refills of the random pool) are distinct', () => {
  const early = uuidv7(1_700_000_000_000);
  const late = uuidv7(1_700_000_000_001);
  assert.ok(early < late);
  const seen = new Set<string>();
  for (let i = 0; i < 200_000; i++) {
    const id = uuidv7();
    assert.ok(V7.test(id), id);
    seen.add(id);
  }
  assert.equal(seen.size, 200_000);
});
