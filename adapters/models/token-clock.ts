/**
 * One timer per due millisecond for every stream, instead of one per stream per token: 1,000
 * streams at 20 tokens/s are 20,000 setTimeouts a second on their own, but their tokens fall due
 * in at most 1,000 distinct milliseconds a second, so they share those timers. wakeAt() calls
 * back at (or just after) performance.now() >= at; the returned function cancels.
 */
export class TokenClock {
  private readonly slots = new Map<number, (() => void)[]>();

  wakeAt(at: number, cb: () => void): () => void {
    const slot = Math.ceil(at);
    let list = this.slots.get(slot);
    if (!list) {
      const l: (() => void)[] = (list = []);
      this.slots.set(slot, l);
      setTimeout(() => this.fire(slot, l), Math.max(1, slot - performance.now()));
    }
    list.push(cb);
    const mine = list;
    return () => {
      const i = mine.indexOf(cb);
      if (i >= 0) mine[i] = noop;
    };
  }

  private fire(slot: number, list: (() => void)[]): void {
    this.slots.delete(slot);
    for (const cb of list) cb();
  }
}

function noop(): void {}

/** The process's clock (one set of timers however many backends). */
export const tokenClock = new TokenClock();
