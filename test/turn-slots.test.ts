import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TurnSlots } from '../actors/turn-slots.js';

test('TurnSlots: at most limit run at once, the rest in arrival order, a release hands the slot straight on', () => {
  const slots = new TurnSlots(2);
  const started: number[] = [];
  const taker = (i: number) => ({ startInSlot: () => started.push(i) });
  for (const i of [0, 1, 2, 3, 4]) slots.take(taker(i));
  assert.deepEqual(started, [0, 1], 'two start at once');
  assert.deepEqual(slots.size, { running: 2, waiting: 3 });
  slots.release();
  assert.deepEqual(started, [0, 1, 2], 'a freed slot goes to the first waiting');
  // A new arrival while the others wait does not jump the queue.
  slots.take(taker(5));
  slots.release();
  slots.release();
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  slots.release();
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(slots.size, { running: 2, waiting: 0 });
  slots.release();
  slots.release();
  assert.deepEqual(slots.size, { running: 0, waiting: 0 });
  // Free again: the next one starts at once.
  slots.take(taker(6));
  assert.deepEqual(started.at(-1), 6);
});
