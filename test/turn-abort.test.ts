import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../src/errors.js';
import { TurnAbort } from '../src/models/turn-abort.js';

describe('TurnAbort: a turn\'s cancellation without an EventTarget', () => {
  it('calls each callback once, with the reason kept; later calls are ignored', () => {
    const a = new TurnAbort();
    const seen: string[] = [];
    a.onAbort(() => seen.push('one'));
    a.onAbort(() => seen.push('two'));
    const reason = new ApiError('TIMEOUT', 'deadline');
    a.abort(reason);
    a.abort(new ApiError('CONFLICT', 'second'));
    assert.deepEqual(seen, ['one', 'two']);
    assert.equal(a.aborted, true);
    assert.equal(a.reason, reason);
  });

  it('a callback registered after the abort runs at once; an unregistered one never runs', () => {
    const a = new TurnAbort();
    let removed = 0;
    const off = a.onAbort(() => removed++);
    off();
    a.abort();
    assert.equal(removed, 0);
    let late = 0;
    a.onAbort(() => late++);
    assert.equal(late, 1);
    assert.equal(a.reason, undefined);
  });

  it('its AbortSignal (made on first use) follows it, before or after the abort', () => {
    const early = new TurnAbort();
    const signal = early.signal;
    assert.equal(signal.aborted, false);
    const reason = new ApiError('SERVICE_UNAVAILABLE', 'stopped');
    early.abort(reason);
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, reason);
    assert.equal(early.signal, signal);

    const late = new TurnAbort();
    late.abort(reason);
    assert.equal(late.signal.aborted, true);
    assert.equal(late.signal.reason, reason);
  });
});

describe('TurnAbort.follow: an outside AbortSignal aborts it', () => {
  it('with the signal\'s reason, at once when already aborted, and not after unfollowing', () => {
    const ac = new AbortController();
    const a = new TurnAbort();
    a.follow(ac.signal);
    const reason = new ApiError('TIMEOUT', 'deadline');
    ac.abort(reason);
    assert.equal(a.aborted, true);
    assert.equal(a.reason, reason);

    const late = new TurnAbort();
    late.follow(ac.signal);
    assert.equal(late.aborted, true);

    const other = new AbortController();
    const b = new TurnAbort();
    b.follow(other.signal)();
    other.abort();
    assert.equal(b.aborted, false);
  });
});
