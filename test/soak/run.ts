import { runSoak } from './soak.js';
import { cliFlags } from '../helpers/cli-flags.js';

/**
 * `npm run soak [-- --cycles=N --seed=S --min-run-ms=A --max-run-ms=B]`: the kill -9 crash soak
 * (see soak.ts). Prints its figures and exits 1 on any violation.
 * `--cluster [--nodes=3 --lease-ttl-ms=1500 --no-pauses]`: against cluster nodes on PostgreSQL +
 * NATS, one node killed per cycle, and one SIGSTOPped for a while around its lease's trust window
 * before that (not with --no-pauses).
 */
const flags = cliFlags();
const num = flags.num;

const report = await runSoak({
  cycles: num('cycles', 20)!,
  seed: num('seed'),
  minRunMs: num('min-run-ms'),
  maxRunMs: num('max-run-ms'),
  chatNfts: num('chat-nfts'),
  deployNfts: num('deploy-nfts'),
  cluster: flags.has('cluster'),
  nodes: num('nodes'),
  leaseTtlMs: num('lease-ttl-ms'),
  pauses: !flags.has('no-pauses'),
  log: (l) => console.log(l),
});

console.log('\nsoak figures');
console.log(`  mode                            ${report.mode}`);
console.log(`  cycles (kill -9 + restart)      ${report.cycles}`);
console.log(`  acknowledged writes checked     ${report.acknowledgedWritesChecked} (${report.checksMade} checks)`);
console.log(`  restart to /health p50 / max    ${report.restartToHealthMs.p50} ms / ${report.restartToHealthMs.max} ms`);
console.log(`  SERVICE_UNAVAILABLE answers     ${report.shutdown503s}`);
console.log('  operations (ok / unanswered / refused):');
for (const [op, t] of Object.entries(report.operations).sort()) console.log(`    ${op.padEnd(20)} ${t.ok} / ${t.unanswered} / ${t.refused}`);
console.log(`  violations                      ${report.violations.length}`);
const byKind = new Map<string, number>();
for (const v of report.violations) byKind.set(v.kind, (byKind.get(v.kind) ?? 0) + 1);
for (const [k, n] of byKind) console.log(`    ${k}: ${n}`);
for (const v of report.violations.slice(0, 20)) console.log(`    [cycle ${v.cycle}] ${v.kind}: ${v.detail.slice(0, 400)}`);
process.exit(report.violations.length ? 1 : 0);
