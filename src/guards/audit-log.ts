import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { AuditEntry, AuditSink } from '../server/http-server.js';
import { RECORD_WIDTH, type AuditVerifyResult } from './audit-chain.js';
import { SqliteAuditStore } from './audit-store.sqlite.js';
import {
  CONTROL_BYTES, CTL_DONE, CTL_OPEN, STAT_COMMITTED, STAT_HEAD_ID, STAT_LAST_PRUNE, STAT_PRUNED_THROUGH,
  type AuditStoreSpec, type AuditWorkerData, type AuditWorkerEvent, type AuditWorkerOp,
} from './audit-worker.js';

// The chain's format lives in audit-chain.ts; these names stay importable from here.
export { GENESIS_HASH, rowContent, chainHash, type AuditRow, type AuditVerifyResult } from './audit-chain.js';

export interface AuditLogOptions {
  /** the SQLite database (its file is what the writer thread opens); not needed with databaseUrl */
  db?: Db;
  /** PANTHERS_DATABASE_URL: the chain lives in PostgreSQL, shared by every node */
  databaseUrl?: string;
  log: Logger;
  metrics?: Metrics;
  /** flush at least this often */
  intervalMs?: number;
  /** hand the batch over early (on the next turn of the loop) once this many rows wait */
  batchSize?: number;
  /** past this many rows waiting for a write that keeps failing, the oldest are dropped and logged */
  maxQueue?: number;
  /** 0 keeps rows forever */
  retentionDays?: number;
  /** the most rows kept; past it the oldest are pruned like retention does (0 = no cap) */
  maxRows?: number;
  /** distinct (ip, method, route, status) aggregates tracked per minute; past it they share one "*" ip */
  maxAggregates?: number;
  /** how long flush()/stop() wait for the writer thread before giving up (and logging) */
  flushTimeoutMs?: number;
  now?: () => number;
}

/** An op without its sequence number (per variant). */
type OpBody = AuditWorkerOp extends infer T ? (T extends unknown ? Omit<T, 'seq'> : never) : never;

/** Requests refused in one minute from one IP with one method, route and status. */
interface Aggregate {
  entry: AuditEntry;
  count: number;
}

/** How long a hand-over waits for the writer's previous batch before leaving the rows queued. */
const HANDOVER_WAIT_MS = 25;

/** /health says degraded once the log holds this share of its cap. */
export const AUDIT_DEGRADED_SHARE = 0.9;

/**
 * The append-only audit trail. On the request path record() only pushes the entry's values onto
 * one flat array (RECORD_WIDTH each). A timer (or a full batch, on the next turn) hands that
 * array to the writer thread (audit-worker.ts) in one postMessage; the thread hashes the chain
 * (hash = sha256(prev_hash + "\n" + canonical content), see audit-chain.ts) and commits the batch
 * in ONE transaction under the head's lock. The `audit_chain` row keeps the head (so a cut-off
 * tail is detected) and the last pruned row (so retention does not break verification).
 *
 * flush(), prune() and stop() are synchronous: they post and block on the thread's done counter
 * (Atomics.wait), so a graceful stop writes every acknowledged request's row before the database
 * closes. What a kill -9 can lose: the rows not yet committed, at most intervalMs (200 ms) of
 * requests or batchSize rows waiting plus the one batch being written; the same bound as before.
 * While the database is locked or unreachable the writer cannot finish, and the rows wait on this
 * thread (up to maxQueue) instead of this thread waiting for it: the event loop is never held.
 * A database in memory (no file a thread could open) is written on this thread instead.
 */
export class AuditLog implements AuditSink {
  /** queued records, flat: the request path's only work */
  private queue: unknown[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  private pruneTimer: NodeJS.Timeout | undefined;
  private aggregates = new Map<string, Aggregate>();
  private aggregateWindow = 0;
  private readonly maxRows: number;
  private readonly maxAggregates: number;
  private readonly intervalMs: number;
  private readonly batchValues: number;
  private readonly maxQueue: number;
  private readonly now: () => number;
  private readonly spec: AuditStoreSpec | undefined;
  /** the in-memory case: written on this thread */
  private inline: SqliteAuditStore | undefined;
  private worker: Worker | undefined;
  private readonly control = new SharedArrayBuffer(CONTROL_BYTES);
  private readonly ctl = new Int32Array(this.control, 0, 4);
  private readonly stats = new Float64Array(this.control, 16, 4);
  private seq = 0;
  /** the seq of the last batch handed over */
  private lastAppend = 0;
  /** rows handed to the thread and not yet reported written */
  private inFlight = 0;
  /** the chain's size before the thread reports it (read on this thread at start, SQLite only) */
  private rowsAtStart = 0;
  private dropped = 0;
  private stopped = false;

  constructor(private readonly opts: AuditLogOptions) {
    this.intervalMs = opts.intervalMs ?? 200;
    this.batchValues = (opts.batchSize ?? 500) * RECORD_WIDTH;
    this.maxQueue = opts.maxQueue ?? 100_000;
    this.maxRows = opts.maxRows ?? 0;
    this.maxAggregates = opts.maxAggregates ?? 10_000;
    this.now = opts.now ?? Date.now;
    if (opts.databaseUrl) this.spec = { kind: 'postgres', url: opts.databaseUrl };
    else if (opts.db && !opts.db.memory) this.spec = { kind: 'sqlite', file: opts.db.name };
    else if (opts.db) this.inline = new SqliteAuditStore(opts.db);
    else throw new Error('AuditLog needs a database (db) or a PostgreSQL URL (databaseUrl)');
    if (this.maxRows) opts.metrics?.auditMaxRows.set(this.maxRows);
  }

  /**
   * Counts a refused request (or preflight) into its minute's aggregate: one row per client IP,
   * method, route and status per minute, written when the minute is over, with `count`.
   */
  refused(entry: AuditEntry): void {
    // The log's own clock decides the minute (flush() closes minutes by it too).
    const now = this.now();
    const windowStart = now - (now % 60_000);
    if (windowStart !== this.aggregateWindow) this.closeAggregates(windowStart);
    let key = `${entry.ip}\0${entry.method}\0${entry.route}\0${entry.status}`;
    let agg = this.aggregates.get(key);
    if (!agg && this.aggregates.size >= this.maxAggregates) {
      // A spray of distinct addresses: the rest of the minute shares one row per kind.
      key = `*\0${entry.method}\0${entry.route}\0${entry.status}`;
      agg = this.aggregates.get(key);
      entry = { ...entry, ip: '*' };
    }
    if (agg) agg.count++;
    else this.aggregates.set(key, { entry: { ...entry, ts: windowStart, wallet: undefined, nft: undefined, durationMs: 0, clientRequestId: undefined }, count: 1 });
    this.opts.metrics?.auditAggregated.inc();
  }

  /** Queues the aggregates of the minute that ended (all of them when `next` is 0). */
  private closeAggregates(next: number): void {
    this.aggregateWindow = next;
    if (this.aggregates.size === 0) return;
    const done = this.aggregates;
    this.aggregates = new Map();
    for (const { entry: e, count } of done.values()) {
      this.queue.push(e.ts, `aggregate-${randomUUID()}`, e.wallet ?? null, e.nft ?? null, e.method, e.route, e.status, e.ip || null, e.durationMs, e.clientRequestId ?? null, count);
    }
  }

  record(e: AuditEntry): void {
    // Values in RECORD_WIDTH order (audit-chain.ts): cheaper to hand over than objects.
    this.queue.push(e.ts, e.requestId, e.wallet ?? null, e.nft ?? null, e.method, e.route, e.status, e.ip || null, e.durationMs, e.clientRequestId ?? null, null);
    if (this.queue.length >= this.batchValues && !this.flushScheduled && this.timer) {
      // Not inline: the request that filled the batch should not pay for handing it over.
      this.flushScheduled = true;
      setImmediate(() => this.handOver());
    }
  }

  /** Rows in the log now (ids are consecutive from the pruned-through anchor to the head). */
  get rows(): number {
    if (this.inline) {
      const st = this.inline.stateSync();
      return st.headId - st.prunedThroughId;
    }
    return Atomics.load(this.ctl, CTL_OPEN) ? this.stats[STAT_HEAD_ID]! - this.stats[STAT_PRUNED_THROUGH]! : this.rowsAtStart;
  }

  /** Undefined while well under the cap; a sentence for /health once near it. */
  nearCap(): string | undefined {
    if (!this.maxRows) return undefined;
    const rows = this.rows;
    if (rows < this.maxRows * AUDIT_DEGRADED_SHARE) return undefined;
    return `audit log holds ${rows} of its ${this.maxRows}-row cap (PANTHERS_AUDIT_MAX_ROWS); the oldest rows are pruned past it`;
  }

  get waiting(): number {
    return this.queue.length / RECORD_WIDTH + this.inFlight;
  }

  start(): void {
    if (this.timer) return;
    this.stopped = false;
    if (this.spec?.kind === 'sqlite' && this.opts.db) {
      // Cheap and synchronous: /health and the gauge are right before the thread reports.
      const st = new SqliteAuditStore(this.opts.db).stateSync();
      this.rowsAtStart = st.headId - st.prunedThroughId;
    }
    this.ensureWorker();
    this.opts.metrics?.auditRows.set(this.rows);
    this.timer = setInterval(() => this.handOver(), this.intervalMs);
    this.timer.unref();
    if (this.opts.retentionDays) {
      // Queued ahead of every batch: rows past retention go before anything new is appended.
      this.pruneAsync();
      this.pruneTimer = setInterval(() => this.pruneAsync(), 3_600_000);
      this.pruneTimer.unref();
    }
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const data: AuditWorkerData = { store: this.spec!, control: this.control, maxRows: this.maxRows, maxQueue: this.maxQueue, retryMs: Math.max(this.intervalMs, 1000) };
    const w = new Worker(new URL('./audit-worker.js', import.meta.url), { workerData: data, name: 'audit-writer' });
    // The thread checkpoints the WAL (CHECKPOINT_INTERVAL_MS): not this thread's commits.
    this.autoCheckpoint(false);
    w.on('message', (e: AuditWorkerEvent) => this.onEvent(e));
    w.on('error', (err) => this.opts.log.error({ err, lost: this.inFlight }, 'audit writer thread failed; a new one takes the next batch'));
    w.on('exit', () => {
      if (this.worker === w) {
        this.worker = undefined;
        this.autoCheckpoint(true);
      }
      // What was in flight is not coming back; a sync waiter sees the thread gone (below).
      this.inFlight = 0;
    });
    // After the listeners (adding a 'message' listener refs the thread again): a process that
    // forgets stop() may still exit (the rows waiting are lost, as before a stop).
    w.unref();
    this.worker = w;
    return w;
  }

  private onEvent(e: AuditWorkerEvent): void {
    const { metrics, log } = this.opts;
    if (e.type === 'written') {
      this.inFlight = Math.max(0, this.inFlight - e.appended);
      metrics?.auditRows.set(e.rows);
      metrics?.auditQueue.set(this.waiting);
      // Rows left queued while the writer was busy go now, not at the next tick.
      if (this.queue.length >= this.batchValues && !this.flushScheduled && this.timer) {
        this.flushScheduled = true;
        setImmediate(() => this.handOver());
      }
      if (e.prunedByCap > 0) {
        metrics?.auditPruned.labels('cap').inc(e.prunedByCap);
        log.warn({ pruned: e.prunedByCap, max_rows: this.maxRows }, 'audit log at its cap: oldest rows pruned');
      }
    } else if (e.type === 'pruned') {
      metrics?.auditPruned.labels('retention').inc(e.pruned);
      metrics?.auditRows.set(e.rows);
    } else if (e.type === 'dropped') {
      this.dropped += e.dropped;
      this.inFlight = Math.max(0, this.inFlight - e.dropped);
      log.error({ dropped: e.dropped, total_dropped: this.dropped }, 'audit queue full: oldest rows dropped');
    } else if (e.type === 'log') {
      log[e.level](e.obj, e.msg);
    }
  }

  /** Posts an op to the writer thread; returns its sequence number. */
  private post(op: OpBody): number {
    const seq = ++this.seq;
    this.ensureWorker().postMessage({ ...op, seq } as AuditWorkerOp);
    return seq;
  }

  /** Blocks this thread until the writer has done op `seq` (bounded); false on timeout. */
  private waitFor(seq: number, brief = false): boolean {
    // A hand-over only waits a moment (and says nothing); flush() and stop() the flush timeout.
    const timeoutMs = brief ? HANDOVER_WAIT_MS : this.opts.flushTimeoutMs ?? 10_000;
    const until = Date.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(this.ctl, CTL_DONE);
      if (done >= seq) return true;
      const left = until - Date.now();
      if (left <= 0 || !this.worker) break;
      Atomics.wait(this.ctl, CTL_DONE, done, Math.min(left, 100));
    }
    if (!brief) this.opts.log.error({ waiting: this.waiting }, 'audit writer did not finish within the flush timeout');
    return false;
  }

  /** Closes the minutes that ended (all with closeAll) and takes the queue; undefined when empty. */
  private takeBatch(closeAll: boolean): unknown[] | undefined {
    this.flushScheduled = false;
    const now = this.now();
    const nowWindow = now - (now % 60_000);
    if (closeAll || nowWindow !== this.aggregateWindow) this.closeAggregates(closeAll ? 0 : nowWindow);
    const batch = this.queue;
    if (batch.length === 0) return undefined;
    this.queue = [];
    return batch;
  }

  /**
   * Hands the queued rows to the writer (timer, full batch; flush() with `patient`). Returns the
   * op's seq, 0 when nothing was handed over.
   */
  private handOver(closeAll = false, patient = false): number {
    // At most one batch in the writer's hands, so its inbox stays bounded. If it is still on the
    // last one, this thread waits a moment (backpressure when it merely lags), but never holds the
    // event loop for a database that is locked or gone: the rows stay queued (bounded by
    // maxQueue) for the next hand-over. flush() and stop() wait the whole flush timeout.
    if (!this.inline && this.lastAppend > Atomics.load(this.ctl, CTL_DONE)
      && !this.waitFor(this.lastAppend, !patient) && !patient) {
      this.flushScheduled = false;
      this.trimQueue();
      return 0;
    }
    const batch = this.takeBatch(closeAll);
    if (!batch) return 0;
    const rows = batch.length / RECORD_WIDTH;
    if (this.inline) {
      this.writeInline(batch);
      return 0;
    }
    this.inFlight += rows;
    this.opts.metrics?.auditQueue.set(this.waiting);
    return (this.lastAppend = this.post({ op: 'append', records: batch }));
  }

  /** The in-memory database's path: the same store, on this thread, with the same retry bound. */
  private writeInline(batch: unknown[]): number {
    const { metrics, log } = this.opts;
    try {
      const r = this.inline!.appendSync(batch, this.maxRows);
      metrics?.auditRows.set(r.state.headId - r.state.prunedThroughId);
      if (r.prunedByCap > 0) {
        metrics?.auditPruned.labels('cap').inc(r.prunedByCap);
        log.warn({ pruned: r.prunedByCap, max_rows: this.maxRows }, 'audit log at its cap: oldest rows pruned');
      }
      return r.appended;
    } catch (e) {
      this.queue = batch.concat(this.queue);
      this.trimQueue();
      log.error({ err: e, waiting: this.queue.length / RECORD_WIDTH }, 'audit batch write failed; will retry');
      return 0;
    } finally {
      metrics?.auditQueue.set(this.waiting);
    }
  }

  /** Past maxQueue rows waiting, the oldest are dropped (and logged): memory stays bounded. */
  private trimQueue(): void {
    const over = this.queue.length / RECORD_WIDTH - this.maxQueue;
    if (over <= 0) return;
    this.queue.splice(0, over * RECORD_WIDTH);
    this.dropped += over;
    this.opts.log.error({ dropped: over, total_dropped: this.dropped }, 'audit queue full: oldest rows dropped');
  }

  /**
   * Writes everything waiting and returns when it is committed (or the write failed and the
   * rows are kept for retry). Returns the rows committed meanwhile. stop() and tests call it.
   */
  flush(closeAll = false): number {
    if (this.inline) {
      const batch = this.takeBatch(closeAll);
      return batch ? this.writeInline(batch) : 0;
    }
    const before = this.stats[STAT_COMMITTED]!;
    const seq = this.handOver(closeAll, true) || (this.inFlight > 0 ? this.seq : 0);
    if (seq) this.waitFor(seq);
    return this.stats[STAT_COMMITTED]! - before;
  }

  /**
   * Deletes rows older than the retention period: a prefix of the chain. The last deleted
   * row's id and hash become the anchor verify starts from. Waits for the writer.
   */
  prune(): number {
    const cutoff = this.cutoff();
    if (cutoff === undefined) return 0;
    if (this.inline) return this.pruneInline(cutoff);
    const seq = this.post({ op: 'prune', cutoff });
    return this.waitFor(seq) ? this.stats[STAT_LAST_PRUNE]! : 0;
  }

  private pruneAsync(): void {
    const cutoff = this.cutoff();
    if (cutoff === undefined) return;
    if (this.inline) this.pruneInline(cutoff);
    else this.post({ op: 'prune', cutoff });
  }

  private cutoff(): number | undefined {
    const days = this.opts.retentionDays ?? 0;
    return days ? this.now() - days * 86_400_000 : undefined;
  }

  private pruneInline(cutoff: number): number {
    try {
      const n = this.inline!.pruneBeforeSync(cutoff);
      this.opts.metrics?.auditPruned.labels('retention').inc(n);
      this.opts.metrics?.auditRows.set(this.rows);
      return n;
    } catch (e) {
      this.opts.log.error({ err: e }, 'audit retention prune failed');
      return 0;
    }
  }

  /** Stops the timers, writes what is left and closes the writer thread. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.timer = undefined;
    this.pruneTimer = undefined;
    this.flush(true);
    if (this.worker && !this.stopped) {
      this.stopped = true;
      const w = this.worker;
      this.waitFor(this.post({ op: 'close' }));
      this.worker = undefined;
      this.autoCheckpoint(true);
      void w.terminate();
    }
  }

  /** SQLite: whether the server's connection checkpoints the WAL itself (SQLite's default, 1,000 pages). */
  private autoCheckpoint(on: boolean): void {
    const db = this.opts.db;
    if (this.spec?.kind !== 'sqlite' || !db?.open) return;
    db.pragma(`wal_autocheckpoint = ${on ? 1000 : 0}`);
  }
}

/** Verifies the chain of a SQLite database (`panthers audit verify`, tests). */
export function verifyAuditChain(db: Db): AuditVerifyResult {
  return new SqliteAuditStore(db).verifySync();
}
