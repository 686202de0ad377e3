import type { Db } from './database.js';

/**
 * A burst's first commit carries at most this many rows; each next one twice as many, up to
 * BURST_MAX_ROWS. 1,000 turns opened at once on one agent: the first turns' rows commit (and
 * their models start) while the rest are still being admitted, instead of all waiting for one
 * 1,000-row commit after the last admission (issue 15: that wait was the chat p99).
 */
export const BURST_FIRST_ROWS = 8;
export const BURST_MAX_ROWS = 128;

/** A store that queues rows for the connection's batch. */
export interface BatchWriter {
  /** Inside the batch's transaction: writes every row this store has queued. */
  writeBatch(): void;
  /** After it: tells the callers of those rows (err: the transaction failed, nothing was written). */
  batchDone(err?: unknown): void;
}

/**
 * Group commit for one SQLite connection, shared by every store on it: what the stores queue in
 * one turn of the event loop is written in one transaction (a turn's reply row, its
 * conversation's updated_at and the day's usage: one COMMIT, not one per store). Within a burst
 * the commits are bounded (BURST_FIRST_ROWS, doubling to BURST_MAX_ROWS): a full batch commits at
 * the next microtask checkpoint, so it never splits the rows one caller queued synchronously
 * together (a turn's prelude and message land together or not at all).
 */
export class WriteBatch {
  private static readonly byDb = new WeakMap<Db, WriteBatch>();

  /** The batch of this connection (one per connection: two would be two commits again). */
  static of(db: Db): WriteBatch {
    let b = WriteBatch.byDb.get(db);
    if (!b) WriteBatch.byDb.set(db, (b = new WriteBatch(db)));
    return b;
  }

  private dirty = new Set<BatchWriter>();
  private rows = 0;
  private flushScheduled = false;
  private earlyScheduled = false;
  /** Rows that make the current batch full (grows through a burst, back to BURST_FIRST_ROWS after). */
  private batchRows = BURST_FIRST_ROWS;
  // Made once: db.transaction() builds its wrappers anew on every call.
  private readonly tx: (writers: Set<BatchWriter>) => void;

  private constructor(private readonly db: Db) {
    this.tx = db.transaction((writers: Set<BatchWriter>) => {
      for (const w of writers) w.writeBatch();
    }).immediate;
  }

  /** `w` queued `rows` more rows: they commit at the end of this turn of the loop, or sooner in a burst. */
  add(w: BatchWriter, rows = 1): void {
    this.dirty.add(w);
    this.rows += rows;
    if (this.rows >= this.batchRows) {
      if (this.earlyScheduled) return;
      this.earlyScheduled = true;
      queueMicrotask(this.flushFull);
    } else this.scheduleFlush();
  }

  /**
   * `w` kept rows that a failed batch did not write: they go with the next batch, not with one of
   * their own (a database that keeps failing is not retried in a loop).
   */
  carry(w: BatchWriter): void {
    this.dirty.add(w);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushAtEndOfTurn);
  }

  /** The loop came round: the burst is over, the next one starts with a small first commit again. */
  private readonly flushAtEndOfTurn = (): void => {
    this.flushScheduled = false;
    this.batchRows = BURST_FIRST_ROWS;
    this.flush();
  };

  /** A full batch: committed once the current caller's synchronous code is done (a microtask). */
  private readonly flushFull = (): void => {
    this.earlyScheduled = false;
    if (this.rows < this.batchRows) return; // flushed meanwhile (shutdown's flush)
    this.batchRows = Math.min(this.batchRows * 2, BURST_MAX_ROWS);
    this.flush();
  };

  /** Writes everything queued, by every store, in one transaction. Also called on shutdown. */
  flush(): void {
    const writers = this.dirty;
    if (writers.size === 0) return;
    this.dirty = new Set();
    this.rows = 0;
    let err: unknown;
    try {
      // Shutting down after the grace period: the turns still queued are cut short.
      if (!this.db.open) throw new Error('database closed');
      this.tx(writers);
    } catch (e) {
      err = e;
    }
    for (const w of writers) w.batchDone(err);
  }
}
