/**
 * What the auth/guard state costs per operation behind the storage seam (not a test): sign-in
 * (challenge insert + nonce burn + the session actor's read + session open), refresh (the
 * route's two reads + the conditional rotation), one replay-set insert, one quota reserve +
 * settle. SQLite (the default, sync inside) beside a real PostgreSQL 15 started here
 * (test/helpers/engines.ts, fsync off); PostgreSQL round trips are counted on the wire
 * (porsager's debug hook: one call per statement sent).
 *   node dist/bench/auth-stores.bench.js [--n 2000]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from '../bin/args.js';
import { startPostgres } from '../test/helpers/engines.js';
import { tempDir } from '../test/helpers/server.js';
import { openDatabase } from '../src/db/database.js';
import { openPg, migratePg } from '../src/db/pg.js';
import { openSqliteStorage, openPgStorage, type Storage } from '../src/db/storage.js';
import { hashRefreshToken } from '../src/auth/sessions.js';

const { flags } = parseArgs(process.argv.slice(2));
const N = Number(flags.n ?? 2000);
const pg = await startPostgres();
let statements = 0;
const sql = openPg(pg.url, { max: 4, debug: () => void statements++ });

interface Row { op: string; store: string; us: number; cpuUs: number; trips: number }
const rows: Row[] = [];

async function measure(store: string, op: string, n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < Math.min(100, n); i++) await fn(-1 - i);
  const s0 = statements;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  rows.push({ op, store, us: (ms * 1000) / n, cpuUs: (cpu.user + cpu.system) / n, trips: (statements - s0) / n });
}

const ids = (tag: string, i: number) => `${tag}-${i}-${randomBytes(4).toString('hex')}`;

async function suite(name: string, st: Storage): Promise<void> {
  await measure(name, 'sign-in (challenge + burn + actor read + open)', N, async (i) => {
    const nonce = ids('n', i);
    const sid = ids('s', i);
    await st.challenges.insert({ nonce, wallet: '0xabc', nft_token_id: '7', message: 'm', created_at: 1, expires_at: 1e13 });
    await st.challenges.burn(nonce, 2);
    await st.sessions.get(sid);
    await st.sessions.open({ id: sid, wallet: '0xabc', nft_token_id: '7', refresh_hash: hashRefreshToken(sid), created_at: 1, expires_at: 1e13 });
  });
  const sid = ids('refresh', 0);
  let hash = hashRefreshToken(`${sid}-0`);
  await st.sessions.open({ id: sid, wallet: '0xabc', nft_token_id: '7', refresh_hash: hash, created_at: 1, expires_at: 1e13 });
  let k = 0;
  await measure(name, 'refresh (route read + conditional rotate)', N, async () => {
    if (!(await st.sessions.sessionOfRefreshToken(hash))) throw new Error('no session');
    const next = hashRefreshToken(`${sid}-${++k}`);
    if (!(await st.sessions.rotate(sid, hash, next, k, 1e13))) throw new Error('lost a rotation');
    hash = next;
  });
  await measure(name, 'replay-set insert (INSERT ... DO NOTHING)', N, (i) => st.replay.remember(ids('sig', i), 1e10));
  await measure(name, 'quota reserve + settle', N, async (i) => {
    const h = ids('h', i);
    const r = await st.quota.reserve(`q${i & 63}`, '2026-12-01', 10, 1e12, h, 1, 1e13);
    if (!r.ok) throw new Error('refused');
    await st.quota.settle(`q${i & 63}`, h, '2026-12-01', 5);
  });
}

try {
  await migratePg(sql);
  const dir = tempDir('panthers-bench-');
  const db = openDatabase(dir);
  await suite('sqlite', openSqliteStorage(dir, { db }));
  // The same statements called directly (the code before the seam): what the async wrapper adds.
  const burn = db.prepare('UPDATE challenges SET used_at = ? WHERE nonce = ? AND used_at IS NULL RETURNING *');
  const ins = db.prepare('INSERT INTO challenges (nonce, wallet, nft_token_id, message, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)');
  const replay = db.prepare('INSERT OR IGNORE INTO signature_replay (signature, expires_at) VALUES (?, ?)');
  await measure('sqlite, direct statements', 'challenge insert + burn', N, async (i) => {
    const nonce = ids('d', i);
    ins.run(nonce, '0xabc', '7', 'm', 1, 1e13);
    burn.get(2, nonce);
  });
  await measure('sqlite, direct statements', 'replay-set insert', N, async (i) => replay.run(ids('dsig', i), 1e10));
  await suite('postgres', openPgStorage(sql, { dataDir: dir, clusterSecret: 'bench-cluster-secret-0123456789abcdef' }));
  console.log(`n=${N} per row, 1 in flight; PostgreSQL 15 on loopback, fsync=off; CPU is this process only\n`);
  console.log('| operation | store | latency (us) | CPU in the node (us) | PG round trips |');
  console.log('|---|---|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.op} | ${r.store} | ${r.us.toFixed(1)} | ${r.cpuUs.toFixed(1)} | ${r.store === 'postgres' ? r.trips.toFixed(2) : '-'} |`);
  db.close();
} finally {
  await sql.end({ timeout: 1 });
  pg.stop();
}
