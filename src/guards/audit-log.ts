import crypto, { randomUUID } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { AuditEntry, AuditSink } from '../server/http-server.js';

/** prev_hash of the very first row. */
export const GENESIS_HASH = '0'.repeat(64);

/** One stored row, as read back for verification and `panthers audit tail`. */
export interface AuditRow {
  id: number;
  ts: number;
  request_id: string;
  wallet: string | null;
  nft_token_id: string | null;
  method: string;
  route: string;
  status: number;
  client_ip: string | null;
  duration_ms: number;
  /** the caller's own X-Request-Id (request_id is always ours); NULL when none was sent */
  client_request_id?: string | null;
  /** an aggregate row stands for this many refused requests; NULL for an ordinary row */
  count?: number | null;
  prev_hash: string;
  hash: string;
}

/**
 * The canonical content a row's hash covers: every column but the hashes, id included (so a
 * renumbered or reordered row breaks the chain), as a JSON array (unambiguous, no separators
 * that a field could contain).
 */
export function rowContent(r: Omit<AuditRow, 'prev_hash' | 'hash'>): string {
  const base = [r.id, r.ts, r.request_id, r.wallet, r.nft_token_id, r.method, r.route, r.status, r.client_ip, r.duration_ms];
  // Columns added later are covered only when set, so rows written before them keep their hash.
  const crid = r.client_request_id ?? null;
  const count = r.count ?? null;
  if (crid !== null || count !== null) base.push(crid, count);
  return JSON.stringify(base);
}

// crypto.hash (Node >= 20.12) is one native call; about half the cost of createHash().update().digest().
const sha256hex: (s: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (s) => (crypto as unknown as { hash(alg: string, data: string): string }).hash('sha256', s)
    : (s) => crypto.createHash('sha256').update(s).digest('hex');

export function chainHash(prevHash: string, content: string): string {
  return sha256hex(prevHash + '\n' + content);
}

const COLUMNS = 'id, ts, request_id, wallet, nft_token_id, method, route, status, client_ip, duration_ms, client_request_id, count, prev_hash, hash';
const PARAMS = 14;
/** Rows per INSERT statement: measured 6.1 us/row one at a time, 2.8 us/row 100 at a time. */
const ROWS_PER_INSERT = 100;

/** What a refused-request aggregate adds to an entry. */
type QueuedEntry = AuditEntry & { count?: number };

export interface AuditLogOptions {
  db: Db;
  log: Logger;
  metrics?: Metrics;
  /** flush at least this often */
  intervalMs?: number;
  /** flush early (on the next turn of the loop) once this many rows wait */
  batchSize?: number;
  /** past this many waiting rows (the database cannot keep up) the oldest are dropped and logged */
  maxQueue?: number;
  /** 0 keeps rows forever */
  retentionDays?: number;
  /** the most rows kept; past it the oldest are pruned like retention does (0 = no cap) */
  maxRows?: number;
  /** distinct (ip, method, route, status) aggregates tracked per minute; past it they share one "*" ip */
  maxAggregates?: number;
  now?: () => number;
}

interface ChainState {
  headId: number;
  headHash: string;
  prunedThroughId: number;
}

/** Requests refused in one minute from one IP with one method, route and status. */
interface Aggregate {
  entry: AuditEntry;
  count: number;
}

/** /health says degraded once the log holds this share of its cap. */
export const AUDIT_DEGRADED_SHARE = 0.9;

/**
 * The append-only audit trail. record() runs on the request path and only pushes to an array;
 * a timer (or a full batch) writes the waiting rows in ONE transaction, computing the hash
 * chain there: hash = sha256(prev_hash + "\n" + canonical content). The `audit_chain` row keeps
 * the head (so a cut-off tail is detected) and the last pruned row (so retention does not
 * break verification: the first remaining row links to the pruned-through hash).
 */
export class AuditLog implements AuditSink {
  private queue: QueuedEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  private pruneTimer: NodeJS.Timeout | undefined;
  private state: ChainState | undefined;
  private readonly inserts = new Map<number, Statement>();
  private dropped = 0;
  private aggregates = new Map<string, Aggregate>();
  private aggregateWindow = 0;
  private readonly maxRows: number;
  private readonly maxAggregates: number;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly maxQueue: number;
  private readonly now: () => number;

  constructor(private readonly opts: AuditLogOptions) {
    this.intervalMs = opts.intervalMs ?? 200;
    this.batchSize = opts.batchSize ?? 500;
    this.maxQueue = opts.maxQueue ?? 100_000;
    this.maxRows = opts.maxRows ?? 0;
    this.maxAggregates = opts.maxAggregates ?? 10_000;
    this.now = opts.now ?? Date.now;
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
    for (const { entry, count } of done.values()) {
      this.queue.push({ ...entry, requestId: `aggregate-${randomUUID()}`, count });
    }
  }

  /** Rows in the log now (ids are consecutive from the pruned-through anchor to the head). */
  get rows(): number {
    const st = this.state;
    return st ? st.headId - st.prunedThroughId : 0;
  }

  /** Undefined while well under the cap; a sentence for /health once near it. */
  nearCap(): string | undefined {
    if (!this.maxRows) return undefined;
    this.state ??= readChainState(this.opts.db);
    const rows = this.rows;
    if (rows < this.maxRows * AUDIT_DEGRADED_SHARE) return undefined;
    return `audit log holds ${rows} of its ${this.maxRows}-row cap (PANTHERS_AUDIT_MAX_ROWS); the oldest rows are pruned past it`;
  }

  record(entry: AuditEntry): void {
    this.queue.push(entry);
    if (this.queue.length >= this.batchSize && !this.flushScheduled && this.timer) {
      // Not inline: the request that filled the batch should not pay for writing it.
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  start(): void {
    if (this.timer) return;
    this.state ??= readChainState(this.opts.db);
    this.opts.metrics?.auditRows.set(this.rows);
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
    if (this.opts.retentionDays) {
      this.prune();
      this.pruneTimer = setInterval(() => this.prune(), 3_600_000);
      this.pruneTimer.unref();
    }
  }

  /** Writes everything waiting. Called by the timer, a full batch, and stop(). */
  flush(closeAll = false): number {
    this.flushScheduled = false;
    const now = this.now();
    const nowWindow = now - (now % 60_000);
    if (closeAll || nowWindow !== this.aggregateWindow) this.closeAggregates(closeAll ? 0 : nowWindow);
    const batch = this.queue;
    if (batch.length === 0) return 0;
    this.queue = [];
    this.opts.metrics?.auditQueue.set(batch.length);
    try {
      this.write(batch);
    } catch (e) {
      // Keep the rows for the next attempt (e.g. the database was busy); bound what we keep.
      this.queue = batch.concat(this.queue);
      if (this.queue.length > this.maxQueue) {
        const over = this.queue.length - this.maxQueue;
        this.queue.splice(0, over);
        this.dropped += over;
        this.opts.log.error({ dropped: over, total_dropped: this.dropped }, 'audit queue full: oldest rows dropped');
      }
      this.opts.log.error({ err: e, waiting: this.queue.length }, 'audit batch write failed; will retry');
      return 0;
    } finally {
      this.opts.metrics?.auditQueue.set(this.queue.length);
    }
    return batch.length;
  }

  /** A multi-row INSERT for n rows, prepared once per size. */
  private insertFor(n: number): Statement {
    let st = this.inserts.get(n);
    if (!st) {
      st = this.opts.db.prepare(`INSERT INTO audit_log (${COLUMNS}) VALUES ${Array(n).fill(`(${Array(PARAMS).fill('?').join(',')})`).join(',')}`);
      this.inserts.set(n, st);
    }
    return st;
  }

  private write(batch: QueuedEntry[]): void {
    const { db } = this.opts;
    const prunedBefore = this.state?.prunedThroughId;
    db.transaction(() => {
      const st = this.state ?? readChainState(db);
      let { headId, headHash } = st;
      let { prunedThroughId } = st;
      let args: unknown[] = [];
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i]!;
        const row = {
          id: headId + 1,
          ts: e.ts,
          request_id: e.requestId,
          wallet: e.wallet ?? null,
          nft_token_id: e.nft ?? null,
          method: e.method,
          route: e.route,
          status: e.status,
          client_ip: e.ip || null,
          // Rounded so the stored REAL reads back to exactly the value that was hashed.
          duration_ms: Math.round(e.durationMs * 1000) / 1000,
          client_request_id: e.clientRequestId ?? null,
          count: e.count ?? null,
        };
        const hash = chainHash(headHash, rowContent(row));
        args.push(row.id, row.ts, row.request_id, row.wallet, row.nft_token_id, row.method, row.route, row.status, row.client_ip, row.duration_ms, row.client_request_id, row.count, headHash, hash);
        headId = row.id;
        headHash = hash;
        const rows = args.length / PARAMS;
        if (rows === ROWS_PER_INSERT || i === batch.length - 1) {
          this.insertFor(rows).run(args);
          args = [];
        }
      }
      db.prepare('UPDATE audit_chain SET head_id = ?, head_hash = ? WHERE id = 1').run(headId, headHash);
      const over = this.maxRows ? headId - prunedThroughId - this.maxRows : 0;
      if (over > 0) {
        // The cap: the oldest rows go, as retention prunes them; the anchor keeps verify whole.
        const through = prunedThroughId + over;
        const last = db.prepare('SELECT hash FROM audit_log WHERE id = ?').get(through) as { hash: string } | undefined;
        if (last) {
          db.prepare('DELETE FROM audit_log WHERE id <= ?').run(through);
          db.prepare('UPDATE audit_chain SET pruned_through_id = ?, pruned_through_hash = ? WHERE id = 1').run(through, last.hash);
          prunedThroughId = through;
        }
      }
      // Only after the commit succeeds does memory move on (the transaction throws otherwise).
      this.state = { headId, headHash, prunedThroughId };
    })();
    const pruned = prunedBefore === undefined ? 0 : this.state!.prunedThroughId - prunedBefore;
    if (pruned > 0) {
      this.opts.metrics?.auditPruned.labels('cap').inc(pruned);
      this.opts.log.warn({ pruned, max_rows: this.maxRows }, 'audit log at its cap: oldest rows pruned');
    }
    this.opts.metrics?.auditRows.set(this.rows);
  }

  /**
   * Deletes rows older than the retention period: a prefix of the chain. The last deleted
   * row's id and hash become the anchor verify starts from.
   */
  prune(): number {
    const days = this.opts.retentionDays ?? 0;
    if (!days) return 0;
    const cutoff = this.now() - days * 86_400_000;
    const { db } = this.opts;
    try {
      return db.transaction(() => {
        readChainState(db);
        const last = db.prepare('SELECT id, hash FROM audit_log WHERE ts < ? ORDER BY id DESC LIMIT 1').get(cutoff) as { id: number; hash: string } | undefined;
        if (!last) return 0;
        const n = db.prepare('DELETE FROM audit_log WHERE id <= ?').run(last.id).changes;
        db.prepare('UPDATE audit_chain SET pruned_through_id = ?, pruned_through_hash = ? WHERE id = 1').run(last.id, last.hash);
        if (this.state) this.state = { ...this.state, prunedThroughId: last.id };
        this.opts.metrics?.auditPruned.labels('retention').inc(n);
        this.opts.metrics?.auditRows.set(this.rows);
        return n;
      })();
    } catch (e) {
      this.opts.log.error({ err: e }, 'audit retention prune failed');
      return 0;
    }
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Stops the timers and writes what is left. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.timer = undefined;
    this.pruneTimer = undefined;
    this.flush(true);
  }
}

/** The chain's anchor row, created on first use (a database from before the chain table). */
function readChainState(db: Db): ChainState {
  let row = db.prepare('SELECT head_id, head_hash, pruned_through_id FROM audit_chain WHERE id = 1').get() as { head_id: number; head_hash: string; pruned_through_id: number } | undefined;
  if (!row) {
    db.prepare('INSERT INTO audit_chain (id, pruned_through_id, pruned_through_hash, head_id, head_hash) VALUES (1, 0, ?, 0, ?)').run(GENESIS_HASH, GENESIS_HASH);
    row = { head_id: 0, head_hash: GENESIS_HASH, pruned_through_id: 0 };
  }
  return { headId: row.head_id, headHash: row.head_hash, prunedThroughId: row.pruned_through_id };
}

export interface AuditVerifyResult {
  ok: boolean;
  /** rows checked */
  rows: number;
  /** the first row that does not verify (or the row after a gap) */
  firstBadId?: number;
  reason?: string;
}

/**
 * Walks the chain in id order from its anchor: each row's prev_hash must be the previous row's
 * hash, its hash must match its content, ids must be consecutive, and the last row must be the
 * recorded head. Detects an edited row, a deleted row (middle, first or last), and rows moved
 * or renumbered. Someone able to rewrite the whole file can recompute everything: publish
 * `audit tail`'s head hash elsewhere for that.
 */
export function verifyAuditChain(db: Db): AuditVerifyResult {
  const anchor = db.prepare('SELECT pruned_through_id, pruned_through_hash, head_id, head_hash FROM audit_chain WHERE id = 1').get() as
    | { pruned_through_id: number; pruned_through_hash: string; head_id: number; head_hash: string }
    | undefined;
  let prevId = anchor?.pruned_through_id ?? 0;
  let prevHash = anchor?.pruned_through_hash ?? GENESIS_HASH;
  let rows = 0;
  const bad = (id: number, reason: string): AuditVerifyResult => ({ ok: false, rows, firstBadId: id, reason });
  for (const r of db.prepare('SELECT * FROM audit_log ORDER BY id').iterate() as IterableIterator<AuditRow>) {
    if (r.id !== prevId + 1) {
      return bad(r.id, r.id > prevId + 1 ? `rows ${prevId + 1}..${r.id - 1} are missing before row ${r.id}` : `row id ${r.id} is out of sequence`);
    }
    if (r.prev_hash !== prevHash) return bad(r.id, `row ${r.id} does not link to the previous row's hash`);
    if (chainHash(r.prev_hash, rowContent(r)) !== r.hash) return bad(r.id, `row ${r.id} content does not match its hash (edited)`);
    prevId = r.id;
    prevHash = r.hash;
    rows++;
  }
  if (anchor && (anchor.head_id !== prevId || anchor.head_hash !== prevHash)) {
    return { ok: false, rows, firstBadId: prevId + 1, reason: `the log ends at row ${prevId} but its recorded head is row ${anchor.head_id} (rows deleted from the end)` };
  }
  return { ok: true, rows };
}
