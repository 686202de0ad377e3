import type { Db } from '../../src/db/database.js';

/** The `ownership_cursor` row of one log source (e.g. `evm:1:0xcontract`): survives restarts. */
export function sqliteBlockCursor(db: Db, source: string, now: () => number = Date.now): { get(): number | undefined; set(block: number): void } {
  const get = db.prepare<[string], number>('SELECT block FROM ownership_cursor WHERE source = ?').pluck();
  const set = db.prepare<[string, number, number]>(
    'INSERT INTO ownership_cursor (source, block, updated_at) VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET block = excluded.block, updated_at = excluded.updated_at',
  );
  return {
    get: () => get.get(source),
    set: (block) => void set.run(source, block, now()),
  };
}
