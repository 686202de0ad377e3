import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TurnSlots } from '../actors/turn-slots.js';

test('TurnSlots: at most limit run at once, the rest in arrival order, a throw frees its slot', async () => {
  const slots = new TurnSlots(2);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const task = (i: number) => async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 5));
    running--;
    order.push(i);
    if (i === 1) throw new Error('boom');
    return i;
  };
  const all = [0, 1, 2, 3, 4].map((i) => slots.run(task(i)));
  // A new arrival while a slot is being handed over does not jump the queue.
  const late = slots.run(task(5));
  const results = await Promise.allSettled([...all, late]);
  assert.equal(peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  assert.equal(results[1]!.status, 'rejected');
  assert.deepEqual(results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<number>).value), [0, 2, 3, 4, 5]);
  assert.deepEqual(slots.size, { running: 0, waiting: 0 });
  // A task that throws synchronously is a rejection, and frees its slot too.
  await assert.rejects(slots.run(() => { throw new Error('sync'); }), /sync/);
  assert.deepEqual(slots.size, { running: 0, waiting: 0 });
});
