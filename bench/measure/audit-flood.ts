import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import { detectTools } from '../lib/tools.js';
import { startProject, tempDir } from '../lib/servers.js';
import { DB_FILE } from '../../src/db/database.js';

/**
 * Audit rows written by a flood: N requests from one address to a real `panthers serve` with
 * the default rate limits, split over CORS preflights, unauthenticated GETs and bad tokens.
 *   node dist/bench/measure/audit-flood.js [--requests=10000]
 */
const arg = process.argv.find((a) => a.startsWith('--requests='));
const N = arg ? Number(arg.slice('--requests='.length)) : 10_000;

async function main(): Promise<void> {
  const tools = detectTools();
  const dir = tempDir('panthers-auditflood-');
  // The project's defaults: rate limits on (the harness turns them off for speed benches).
  const target = await startProject(tools, { dataDir: dir, delayMs: 0, env: { PANTHERS_RATE_LIMITS: '', PANTHERS_CORS_ORIGINS: 'https://app.example' } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const kinds = [
    { method: 'OPTIONS', path: '/v1/deployments', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } },
    { method: 'GET', path: '/v1/health', headers: {} },
    { method: 'GET', path: '/v1/deployments', headers: { authorization: 'Bearer not-a-token' } },
  ];
  const statuses: Record<string, number> = {};
  let sent = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (sent < N) {
      const k = kinds[sent++ % kinds.length]!;
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: target.port, method: k.method, path: k.path, headers: k.headers, agent }, (res) => {
          res.resume();
          res.on('end', () => {
            const key = `${k.method} ${res.statusCode}`;
            statuses[key] = (statuses[key] ?? 0) + 1;
            resolve();
          });
        });
        req.on('error', reject);
        req.end();
      });
    }
  }));
  const ms = performance.now() - t0;
  agent.destroy();
  await target.stop();
  const db = new Database(path.join(dir, DB_FILE), { readonly: true });
  const rows = (db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
  const aggregates = db.prepare("SELECT method, route, status, count FROM audit_log WHERE count IS NOT NULL ORDER BY id").all();
  db.close();
  console.log(JSON.stringify({ requests: N, ms: Math.round(ms), statuses, audit_rows: rows, aggregate_rows: aggregates }, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
