import type { Sql, TransactionSql } from 'postgres';
import { migratePg } from '../db/pg.js';
import { AUDIT_COLUMNS, ChainWalker, GENESIS_HASH, chainRows, type AuditChainState, type AuditRow, type AuditVerifyResult } from './audit-chain.js';
import type { AuditAppendResult, AuditStore } from './audit-store.js';

/** The anchor row: created at open, not on first use (a `SELECT ... FOR UPDATE` of a missing row locks nothing, and two nodes would fork the chain). */
const ANCHOR = `INSERT INTO audit_chain (id, pruned_through_id, pruned_through_hash, head_id, head_hash)
  VALUES (1, 0, '${GENESIS_HASH}', 0, '${GENESIS_HASH}') ON CONFLICT (id) DO NOTHING`;

const PARAMS = AUDIT_COLUMNS.length;
/** Postgres array type oids, in AUDIT_COLUMNS order: the batch goes in as 14 arrays through unnest. */
const INT8 = 20, INT4 = 23, TEXT = 25, FLOAT8 = 701;
const COLUMN_TYPES = [INT8, INT8, TEXT, TEXT, TEXT, TEXT, TEXT, INT4, TEXT, FLOAT8, TEXT, INT4, TEXT, TEXT];
const CAST = ['int8', 'int8', 'text', 'text', 'text', 'text', 'text', 'int4', 'text', 'float8', 'text', 'int4', 'text', 'text'];

/** BIGINT columns come back as strings from the driver; the hash covers numbers. */
const SELECT_ROW = `id::float8 AS id, ts::float8 AS ts, request_id, wallet, nft_token_id, method, route, status, client_ip, duration_ms, client_request_id, count, prev_hash, hash`;

/**
 * The audit chain in PostgreSQL: one chain for every node. Each append is one transaction that
 * locks the head row `FOR UPDATE`, hashes the batch onto the head it read, inserts the rows (one
 * statement, the batch as 14 arrays through unnest) and moves the head: writers on any number of
 * connections queue on that lock and the chain stays linear.
 */
export class PgAuditStore implements AuditStore {
  readonly kind = 'postgres' as const;

  constructor(private readonly sql: Sql, private readonly ownsSql = false) {}

  /** Applies the PostgreSQL migrations (src/db/pg-migrations.ts: audit_log in 1 and 5, audit_chain in 2) and creates the anchor. */
  async ensureSchema(): Promise<void> {
    await migratePg(this.sql);
    await this.sql.unsafe(ANCHOR);
  }

  async append(records: readonly unknown[], maxRows: number): Promise<AuditAppendResult> {
    return (await this.sql.begin(async (tx) => {
      const st = await lockHead(tx);
      const values: unknown[] = [];
      const head = chainRows(records, st.headId, st.headHash, values);
      const rows = values.length / PARAMS;
      if (rows) {
        const cols: unknown[][] = COLUMN_TYPES.map(() => new Array(rows));
        for (let r = 0; r < rows; r++) for (let c = 0; c < PARAMS; c++) cols[c]![r] = values[r * PARAMS + c];
        const arrays = cols.map((col, c) => tx.array(col as never[], COLUMN_TYPES[c]));
        const unnest = CAST.map((t, c) => `$${c + 1}::${t}[]`).join(', ');
        await tx.unsafe(`INSERT INTO audit_log (${AUDIT_COLUMNS.join(', ')}) SELECT * FROM unnest(${unnest})`, arrays as never[], { prepare: true });
        await tx`UPDATE audit_chain SET head_id = ${head.headId}, head_hash = ${head.headHash} WHERE id = 1`;
      }
      let { prunedThroughId, prunedThroughHash } = st;
      let prunedByCap = 0;
      const over = maxRows ? head.headId - prunedThroughId - maxRows : 0;
      if (over > 0) {
        const through = prunedThroughId + over;
        const [last] = await tx<{ hash: string }[]>`SELECT hash FROM audit_log WHERE id = ${through}`;
        if (last) {
          prunedByCap = (await tx`DELETE FROM audit_log WHERE id <= ${through}`).count;
          await tx`UPDATE audit_chain SET pruned_through_id = ${through}, pruned_through_hash = ${last.hash} WHERE id = 1`;
          prunedThroughId = through;
          prunedThroughHash = last.hash;
        }
      }
      return { state: { ...head, prunedThroughId, prunedThroughHash }, appended: rows, prunedByCap };
    })) as AuditAppendResult;
  }

  async pruneBefore(cutoffTs: number): Promise<number> {
    return (await this.sql.begin(async (tx) => {
      await lockHead(tx);
      const [last] = await tx<{ id: number; hash: string }[]>`SELECT id::float8 AS id, hash FROM audit_log WHERE ts < ${cutoffTs} ORDER BY id DESC LIMIT 1`;
      if (!last) return 0;
      const n = (await tx`DELETE FROM audit_log WHERE id <= ${last.id}`).count;
      await tx`UPDATE audit_chain SET pruned_through_id = ${last.id}, pruned_through_hash = ${last.hash} WHERE id = 1`;
      return n;
    })) as number;
  }

  async state(): Promise<AuditChainState> {
    return (await readHead(this.sql)) ?? { headId: 0, headHash: GENESIS_HASH, prunedThroughId: 0, prunedThroughHash: GENESIS_HASH };
  }

  async verify(): Promise<AuditVerifyResult> {
    // One snapshot for anchor and rows: other nodes keep appending while we walk.
    return (await this.sql.begin('isolation level repeatable read read only', async (tx) => {
      const walker = new ChainWalker(await readHead(tx));
      walk: for await (const rows of tx.unsafe(`SELECT ${SELECT_ROW} FROM audit_log ORDER BY id`).cursor(1000)) {
        // Leaving the loop closes the cursor.
        for (const r of rows as unknown as AuditRow[]) if (!walker.next(r)) break walk;
      }
      return walker.result();
    })) as AuditVerifyResult;
  }

  async tail(n: number): Promise<AuditRow[]> {
    const rows = await this.sql.unsafe(`SELECT * FROM (SELECT ${SELECT_ROW} FROM audit_log ORDER BY id DESC LIMIT $1) t ORDER BY id`, [n]);
    return rows as unknown as AuditRow[];
  }

  async after(afterId: number, limit: number): Promise<AuditRow[]> {
    const rows = await this.sql.unsafe(`SELECT ${SELECT_ROW} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit]);
    return rows as unknown as AuditRow[];
  }

  async close(): Promise<void> {
    if (this.ownsSql) await this.sql.end({ timeout: 5 });
  }
}

type Runner = Sql | TransactionSql;

async function readHead(sql: Runner, forUpdate = false): Promise<AuditChainState | undefined> {
  const rows = await sql.unsafe(
    `SELECT head_id::float8 AS head_id, head_hash, pruned_through_id::float8 AS pruned_through_id, pruned_through_hash FROM audit_chain WHERE id = 1${forUpdate ? ' FOR UPDATE' : ''}`,
  );
  const row = rows[0] as unknown as { head_id: number; head_hash: string; pruned_through_id: number; pruned_through_hash: string } | undefined;
  return row && { headId: row.head_id, headHash: row.head_hash, prunedThroughId: row.pruned_through_id, prunedThroughHash: row.pruned_through_hash };
}

/** The chain's head, locked until the transaction ends: the one place appends serialize. */
async function lockHead(tx: TransactionSql): Promise<AuditChainState> {
  const st = await readHead(tx, true);
  if (!st) throw new Error('audit_chain has no anchor row: apply the PostgreSQL migrations (panthers migrate)');
  return st;
}
