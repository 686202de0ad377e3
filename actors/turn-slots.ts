/** What waits for a slot: started once it has one, and hands it back with `release()` when done. */
export interface SlotTaker {
  startInSlot(): void;
}

/**
 * At most `limit` takers run at once; the others wait, first come first served. What the agent
 * actor needs of p-queue, without its per-task cost: no promise, wrapper or closure per turn (a
 * turn is its own queue entry), and a turn that finds a free slot starts with one counter bump.
 */
export class TurnSlots {
  private running = 0;
  private readonly waiting: SlotTaker[] = [];

  constructor(private readonly limit: number) {}

  /** Starts `t` now if a slot is free, else once one is handed to it (in arrival order). */
  take(t: SlotTaker): void {
    if (this.running < this.limit) {
      this.running++;
      t.startInSlot();
    } else this.waiting.push(t);
  }

  /**
   * A taker is done: its slot goes straight to the next waiting one (no moment in which a new
   * arrival could take it and run limit + 1 at once).
   */
  release(): void {
    const next = this.waiting.shift();
    if (next) next.startInSlot();
    else this.running--;
  }

  /** Takers running and waiting (for tests and metrics). */
  get size(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
