import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteTurns, type WireTurn } from '../src/cluster/remote-turns.js';
import type { FrameRelay } from '../src/cluster/frame-relay.js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ActorDirectory } from '../src/contracts/actor-directory.js';
import type { TurnHandle, TurnMsg, TurnResult } from '../src/contracts/agent-messages.js';
import { createLogger } from '../src/logger.js';

/**
 * The owner's half of a forwarded turn: a turn resent through a failover can reach the same owner
 * twice (the first forward's answer lost). A cancel from the receiving node must reach every run
 * of it here, and the first run ending must not make the second one uncancellable.
 */
test('a cancel reaches every run of a turn served twice here, also after the first has ended', async () => {
  const published: string[] = [];
  const relay = { publish: (topic: string) => void published.push(topic) } as unknown as FrameRelay;
  const turns = new RemoteTurns({ relay, nc: undefined as unknown as NatsConnection, log: createLogger({ level: 'silent' }), localPublish: () => {}, heartbeatMs: 60_000 });
  // An agent whose turns run until cut, or until the test ends them.
  const runs: { msg: TurnMsg; end: (r: TurnResult) => void }[] = [];
  const local: ActorDirectory = {
    async ask<R>(_kind: string, _key: string, m: unknown): Promise<R> {
      const msg = m as TurnMsg;
      let end!: (r: TurnResult) => void;
      const done = new Promise<TurnResult>((resolve) => (end = resolve));
      const result = (incomplete: boolean): TurnResult => ({ response: '', conversation_id: 'c1', timestamp: new Date().toISOString(), tokens_used: 0, incomplete, stored: true });
      msg.controller!.onAbort(() => end(result(true)));
      runs.push({ msg, end: () => end(result(false)) });
      return { conversation_id: 'c1', done } as TurnHandle as R;
    },
    tell() {},
  };
  const wire: WireTurn = { turn: 'abc123:0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000', msg: { type: 'turn', wallet: '0xabc', message: 'hi', conversationId: 'c1' } };
  const first = await turns.serve(local, '7', wire);
  const second = await turns.serve(local, '7', wire, undefined, true);
  assert.notEqual(first.run, second.run);
  assert.equal(runs.length, 2);
  // Both running: a cancel cuts both.
  assert.equal(turns.cancel(wire.turn), true);
  assert.deepEqual(runs.map((r) => r.msg.controller!.aborted), [true, true]);

  // Again, but the first run ends before the cancel comes.
  runs.length = 0;
  const w2: WireTurn = { ...wire, turn: 'abc123:0190aaaa-bbbb-7ccc-8ddd-eeeeffff0001' };
  await turns.serve(local, '7', w2);
  await turns.serve(local, '7', w2, undefined, true);
  runs[0]!.end({} as TurnResult);
  await new Promise((r) => setImmediate(r));
  assert.equal(turns.cancel(w2.turn), true, 'the second run is still known');
  assert.deepEqual(runs.map((r) => r.msg.controller!.aborted), [false, true]);
  await new Promise((r) => setImmediate(r));
  assert.equal(turns.cancel(w2.turn), false, 'both ended: nothing left to cancel');
});
