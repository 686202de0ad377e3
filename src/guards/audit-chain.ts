import crypto from 'node:crypto';

/**
 * The audit chain's format, shared by every store and the worker that writes it: what a row's
 * hash covers, how a batch of queued records becomes chained rows, and how a chain is walked.
 * Nothing here may change for rows already written (old chains must keep verifying).
 */

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

/** The chain's anchors: the last row written and the last row pruned (verify starts after it). */
export interface AuditChainState {
  headId: number;
  headHash: string;
  prunedThroughId: number;
  prunedThroughHash: string;
}

export const EMPTY_CHAIN: AuditChainState = { headId: 0, headHash: GENESIS_HASH, prunedThroughId: 0, prunedThroughHash: GENESIS_HASH };

/**
 * A queued record is RECORD_WIDTH consecutive values in one flat array (what the request path
 * pushes and what crosses to the worker in one postMessage: cloning primitives in an array costs
 * about a third of cloning as many objects, measured in /work/notes/issue-15a.md):
 * ts, request_id, wallet, nft, method, route, status, ip, duration_ms, client_request_id, count.
 */
export const RECORD_WIDTH = 11;

/**
 * The canonical content a row's hash covers: every column but the hashes, id included (so a
 * renumbered or reordered row breaks the chain), as a JSON array (unambiguous, no separators
 * that a field could contain).
 */
export function rowContent(r: Omit<AuditRow, 'prev_hash' | 'hash'>): string {
  return contentOf(r.id, r.ts, r.request_id, r.wallet, r.nft_token_id, r.method, r.route, r.status, r.client_ip, r.duration_ms, r.client_request_id ?? null, r.count ?? null);
}

/** rowContent from the columns themselves: the write path builds no row object. */
function contentOf(
  id: number, ts: number, requestId: string, wallet: string | null, nft: string | null, method: string, route: string,
  status: number, ip: string | null, durationMs: number, crid: string | null, count: number | null,
): string {
  // Exactly JSON.stringify([...]) (the chain's format; test/audit-engine.test.ts checks they agree),
  // built by concatenation: about half the cost, paid once per row on the write path.
  const head = '[' + num(id) + ',' + num(ts) + ',' + str(requestId) + ',' + str(wallet) + ',' + str(nft) + ',' +
    str(method) + ',' + str(route) + ',' + num(status) + ',' + str(ip) + ',' + num(durationMs);
  // Columns added later are covered only when set, so rows written before them keep their hash.
  if (crid !== null || count !== null) return head + ',' + str(crid) + ',' + num(count) + ']';
  return head + ']';
}

/** Printable ASCII but `"` and `\`: JSON.stringify would quote it unchanged. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function str(s: string | null | undefined): string {
  if (s === null || s === undefined) return 'null';
  return PLAIN.test(s) ? '"' + s + '"' : JSON.stringify(s);
}

function num(n: number | null | undefined): string {
  return typeof n === 'number' && Number.isFinite(n) ? String(n) : 'null';
}

// crypto.hash (Node >= 20.12) is one native call; about half the cost of createHash().update().digest().
const sha256hex: (s: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (s) => (crypto as unknown as { hash(alg: string, data: string): string }).hash('sha256', s)
    : (s) => crypto.createHash('sha256').update(s).digest('hex');

export function chainHash(prevHash: string, content: string): string {
  return sha256hex(prevHash + '\n' + content);
}

/** Column order of a stored row, as chainRows() fills its values. */
export const AUDIT_COLUMNS = ['id', 'ts', 'request_id', 'wallet', 'nft_token_id', 'method', 'route', 'status', 'client_ip', 'duration_ms', 'client_request_id', 'count', 'prev_hash', 'hash'] as const;

const orNull = <T>(v: T | undefined | null): T | null => (v === undefined ? null : v);

/**
 * Turns `records` (flat, RECORD_WIDTH values each) into chained rows after the head: each row's
 * values in AUDIT_COLUMNS order, pushed onto `out` (one flat array, as a multi-row INSERT takes
 * them). Returns the new head.
 */
export function chainRows(records: readonly unknown[], headId: number, headHash: string, out: unknown[]): { headId: number; headHash: string } {
  for (let i = 0; i + RECORD_WIDTH <= records.length; i += RECORD_WIDTH) {
    const id = headId + 1;
    const ts = records[i] as number;
    const requestId = records[i + 1] as string;
    const wallet = orNull(records[i + 2] as string | null);
    const nft = orNull(records[i + 3] as string | null);
    const method = records[i + 4] as string;
    const route = records[i + 5] as string;
    const status = records[i + 6] as number;
    const ip = (records[i + 7] as string | null) || null;
    // Rounded so the stored REAL reads back to exactly the value that was hashed.
    const durationMs = Math.round((records[i + 8] as number) * 1000) / 1000;
    const crid = orNull(records[i + 9] as string | null);
    const count = orNull(records[i + 10] as number | null);
    const hash = chainHash(headHash, contentOf(id, ts, requestId, wallet, nft, method, route, status, ip, durationMs, crid, count));
    out.push(id, ts, requestId, wallet, nft, method, route, status, ip, durationMs, crid, count, headHash, hash);
    headId = id;
    headHash = hash;
  }
  return { headId, headHash };
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
 * or renumbered. `anchor` undefined: a log from before the chain table (starts at genesis, no
 * head to compare). Rows and anchor must come from one snapshot (a concurrent batch otherwise
 * looks like rows past the head).
 */
export class ChainWalker {
  private prevId: number;
  private prevHash: string;
  private rows = 0;
  private bad: AuditVerifyResult | undefined;

  constructor(private readonly anchor: AuditChainState | undefined) {
    this.prevId = anchor?.prunedThroughId ?? 0;
    this.prevHash = anchor?.prunedThroughHash ?? GENESIS_HASH;
  }

  /** Checks the next row; false once the chain is broken (stop feeding it). */
  next(r: AuditRow): boolean {
    if (this.bad) return false;
    const fail = (reason: string): boolean => {
      this.bad = { ok: false, rows: this.rows, firstBadId: r.id, reason };
      return false;
    };
    if (r.id !== this.prevId + 1) {
      return fail(r.id > this.prevId + 1 ? `rows ${this.prevId + 1}..${r.id - 1} are missing before row ${r.id}` : `row id ${r.id} is out of sequence`);
    }
    if (r.prev_hash !== this.prevHash) return fail(`row ${r.id} does not link to the previous row's hash`);
    if (chainHash(r.prev_hash, rowContent(r)) !== r.hash) return fail(`row ${r.id} content does not match its hash (edited)`);
    this.prevId = r.id;
    this.prevHash = r.hash;
    this.rows++;
    return true;
  }

  result(): AuditVerifyResult {
    if (this.bad) return this.bad;
    const a = this.anchor;
    if (a && (a.headId !== this.prevId || a.headHash !== this.prevHash)) {
      return { ok: false, rows: this.rows, firstBadId: this.prevId + 1, reason: `the log ends at row ${this.prevId} but its recorded head is row ${a.headId} (rows deleted from the end)` };
    }
    return { ok: true, rows: this.rows };
  }
}
