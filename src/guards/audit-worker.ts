import { parentPort, workerData } from 'node:worker_threads';
import { RECORD_WIDTH } from './audit-chain.js';
import type { AuditStore } from './audit-store.js';

/**
 * The audit writer thread: hashes each batch onto the chain and commits it, so the request path
 * only pushes values onto an array. One op at a time, in the order posted; after each, the op's
 * sequence number goes into the shared control word and waiters are woken (AuditLog.flush()
 * and stop() block on it with Atomics.wait, so a graceful stop still writes every row first).
 */

export type AuditStoreSpec = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

export interface AuditWorkerData {
  store: AuditStoreSpec;
  /** Int32 [0] = last op done, [1] = 1 once the store is open; Float64 from byte 16: STAT_* */
  control: SharedArrayBuffer;
  maxRows: number;
  /** records kept for retry when writes fail; past it the oldest are dropped (and logged) */
  maxQueue: number;
  retryMs: number;
}

export type AuditWorkerOp =
  | { op: 'append'; seq: number; records: unknown[] }
  | { op: 'prune'; seq: number; cutoff: number }
  | { op: 'close'; seq: number };

export type AuditWorkerEvent =
  | { type: 'written'; appended: number; prunedByCap: number; rows: number; held: number }
  | { type: 'pruned'; pruned: number; rows: number }
  | { type: 'dropped'; dropped: number; total: number }
  | { type: 'log'; level: 'error' | 'warn'; obj: Record<string, unknown>; msg: string };

export const CTL_DONE = 0;
export const CTL_OPEN = 1;
export const STAT_HEAD_ID = 0;
export const STAT_PRUNED_THROUGH = 1;
export const STAT_COMMITTED = 2;
export const STAT_LAST_PRUNE = 3;
export const CONTROL_BYTES = 16 + 8 * 4;
/**
 * SQLite: how often this thread checkpoints the WAL. The server's own connection runs with
 * wal_autocheckpoint=0 while this thread lives (AuditLog): otherwise the commit that passes
 * 1,000 WAL pages copies them into the database file and syncs it, on the event loop, in the
 * middle of the turns (about 25 ms a second at 500 chat turns/s, in stalls of tens of ms).
 */
export const CHECKPOINT_INTERVAL_MS = 1000;

function run(port: NonNullable<typeof parentPort>, data: AuditWorkerData): void {
  const ctl = new Int32Array(data.control, 0, 4);
  const stats = new Float64Array(data.control, 16, 4);
  const post = (e: AuditWorkerEvent) => port.postMessage(e);
  const fail = (err: unknown, msg: string, obj: Record<string, unknown> = {}) =>
    post({ type: 'log', level: 'error', obj: { ...obj, err: { message: (err as Error)?.message ?? String(err) } }, msg });

  let store: AuditStore | undefined;
  let checkpoints: NodeJS.Timeout | undefined;
  let opening: Promise<AuditStore> | undefined;
  const open = (): Promise<AuditStore> =>
    (opening ??= (async () => {
      let s: AuditStore;
      if (data.store.kind === 'sqlite') {
        // Loaded per store kind: the thread boots while the server starts; load only what it uses.
        const [{ default: Database }, { SqliteAuditStore }] = await Promise.all([import('better-sqlite3'), import('./audit-store.sqlite.js')]);
        const db = new Database(data.store.file, { fileMustExist: true });
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        // This thread may wait for the lock: no request waits behind it.
        db.pragma('busy_timeout = 5000');
        s = new SqliteAuditStore(db, true);
        // PASSIVE: copies what it can without waiting for (or blocking) a writer or a reader.
        checkpoints = setInterval(() => {
          try {
            db.pragma('wal_checkpoint(PASSIVE)');
          } catch (e) {
            fail(e, 'WAL checkpoint failed; the next one retries');
          }
        }, CHECKPOINT_INTERVAL_MS);
        checkpoints.unref();
      } else {
        const [{ openPg }, { PgAuditStore }] = await Promise.all([import('../db/pg.js'), import('./audit-store.pg.js')]);
        const pg = new PgAuditStore(openPg(data.store.url, { max: 1 }), true);
        await pg.ensureSchema();
        s = pg;
      }
      const st = await s.state();
      stats[STAT_HEAD_ID] = st.headId;
      stats[STAT_PRUNED_THROUGH] = st.prunedThroughId;
      Atomics.store(ctl, CTL_OPEN, 1);
      store = s;
      return s;
    })().catch((e) => {
      opening = undefined; // try again on the next op
      throw e;
    }));

  /** Records whose write failed: written first next time (the chain keeps their order). */
  let held: unknown[] = [];
  let dropped = 0;
  let retry: NodeJS.Timeout | undefined;

  const append = async (records: unknown[]): Promise<void> => {
    const batch = held.length ? held.concat(records) : records;
    held = [];
    if (batch.length === 0) return;
    try {
      const s = store ?? (await open());
      const r = await s.append(batch, data.maxRows);
      stats[STAT_HEAD_ID] = r.state.headId;
      stats[STAT_PRUNED_THROUGH] = r.state.prunedThroughId;
      stats[STAT_COMMITTED] += r.appended;
      post({ type: 'written', appended: r.appended, prunedByCap: r.prunedByCap, rows: r.state.headId - r.state.prunedThroughId, held: 0 });
    } catch (e) {
      // Keep the rows for the next attempt (e.g. the database was busy); bound what we keep.
      held = batch;
      const over = held.length / RECORD_WIDTH - data.maxQueue;
      if (over > 0) {
        held = held.slice(over * RECORD_WIDTH);
        dropped += over;
        post({ type: 'dropped', dropped: over, total: dropped });
      }
      fail(e, 'audit batch write failed; will retry', { waiting: held.length / RECORD_WIDTH });
      retry ??= setTimeout(() => {
        retry = undefined;
        chain = chain.then(() => append([]));
      }, data.retryMs);
    }
  };

  const handle = async (m: AuditWorkerOp): Promise<void> => {
    try {
      if (m.op === 'append') await append(m.records);
      else if (m.op === 'prune') {
        if (held.length) await append([]);
        try {
          const s = store ?? (await open());
          const n = await s.pruneBefore(m.cutoff);
          const st = await s.state();
          stats[STAT_PRUNED_THROUGH] = st.prunedThroughId;
          stats[STAT_LAST_PRUNE] = n;
          if (n) post({ type: 'pruned', pruned: n, rows: st.headId - st.prunedThroughId });
        } catch (e) {
          stats[STAT_LAST_PRUNE] = 0;
          fail(e, 'audit retention prune failed');
        }
      } else if (m.op === 'close') {
        if (retry) clearTimeout(retry);
        if (checkpoints) clearInterval(checkpoints);
        if (held.length) await append([]);
        if (held.length) post({ type: 'log', level: 'error', obj: { lost: held.length / RECORD_WIDTH }, msg: 'audit rows could not be written before stop' });
        await store?.close();
        port.close();
      }
    } finally {
      Atomics.store(ctl, CTL_DONE, m.seq);
      Atomics.notify(ctl, CTL_DONE);
    }
  };

  let chain: Promise<void> = open().then(
    () => undefined,
    (e) => fail(e, 'audit store did not open; will retry with the next batch'),
  );
  port.on('message', (m: AuditWorkerOp) => {
    chain = chain.then(() => handle(m));
  });
}

if (parentPort) run(parentPort, workerData as AuditWorkerData);
