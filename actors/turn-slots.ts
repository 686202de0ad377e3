/**
 * At most `limit` tasks run at once; the others wait, first come first served. What the agent
 * actor needs of p-queue, without its per-task cost (an async wrapper, abort-handler closures
 * and an options object per turn): a turn that finds a free slot starts with one counter bump.
 */
export class TurnSlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running < this.limit) {
      this.running++;
      return this.exec(task);
    }
    return new Promise<void>((r) => this.waiting.push(r)).then(() => this.exec(task));
  }

  /** Tasks running and waiting (for tests and metrics). */
  get size(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  private exec<T>(task: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = task();
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.finally(this.release);
  }

  // A finished task hands its slot straight to the next waiting one (no moment in which a new
  // arrival could take it and run limit + 1 at once).
  private readonly release = (): void => {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  };
}
