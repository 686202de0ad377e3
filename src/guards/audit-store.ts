import type { AuditChainState, AuditRow, AuditVerifyResult } from './audit-chain.js';

/** What one append did: the chain's new anchors and how many old rows the size cap pruned. */
export interface AuditAppendResult {
  state: AuditChainState;
  /** rows appended */
  appended: number;
  /** oldest rows deleted because the log passed maxRows */
  prunedByCap: number;
}

/**
 * Where the audit chain lives: a SQLite file (one process) or PostgreSQL (every cluster node
 * appends to one chain). An append takes the chain's head under a lock (SQLite's write lock,
 * PostgreSQL's `SELECT ... FOR UPDATE` of the audit_chain row), hashes the batch onto it and
 * commits rows and head in one transaction: any number of writers, one verifiable chain.
 */
export interface AuditStore {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * Appends queued records (flat, RECORD_WIDTH values each: see audit-chain.ts) in one
   * transaction; past `maxRows` (0 = no cap) the oldest rows are pruned in the same transaction.
   */
  append(records: readonly unknown[], maxRows: number): Promise<AuditAppendResult>;
  /** Deletes rows older than `cutoffTs` (a prefix of the chain); the last one becomes the anchor. */
  pruneBefore(cutoffTs: number): Promise<number>;
  /** The anchors (created on first use). */
  state(): Promise<AuditChainState>;
  /** Walks the whole chain in one snapshot. */
  verify(): Promise<AuditVerifyResult>;
  /** The newest n rows, oldest first. */
  tail(n: number): Promise<AuditRow[]>;
  /** Up to `limit` rows after id `afterId`, in order (for `audit tail --follow`). */
  after(afterId: number, limit: number): Promise<AuditRow[]>;
  close(): Promise<void>;
}
