import { runFuzz } from './fuzz.js';
import { cliFlags } from '../helpers/cli-flags.js';

/**
 * `npm run fuzz [-- --requests=N --seed=S]`: the property-based fuzzer (see fuzz.ts). Prints its
 * figures and, on a failure, the shrunk case as a raw request; exits 1 on any failure.
 */
const flags = cliFlags();
const num = flags.num;

const report = await runFuzz({
  requests: num('requests', 100_000)!, seed: num('seed'), probes: !flags.has('no-probes'), log: (l) => console.log(l),
});
console.log('\nfuzz figures');
console.log(`  cases run                ${report.requests} (${report.httpCases} HTTP requests, ${report.wsCases} WS connections with ${report.wsFrames} frames)`);
console.log(`  answers by status        ${Object.entries(report.byStatus).map(([s, n]) => `${s}: ${n}`).join(', ')}`);
console.log(`  503 SERVICE_UNAVAILABLE  ${report.unavailable} (designed: e.g. a provider this server has no credentials for)`);
console.log(`  reset, not the answer    ${report.lingeringClose} (a large body answered early; counted only with FUZZ_ALLOW_LINGER=1)`);
console.log(`  closed by uWS           ${report.uwsRefused} (a method uWS does not parse, or a head over 4 KB it read in pieces: it closes, no app code runs)`);
console.log(`  time                     ${(report.durationMs / 1000).toFixed(1)} s   seed ${report.seed}`);
if (report.failure) {
  console.log(`  FAILED (shrunk ${report.failure.shrinks} times): ${report.failure.message}`);
  console.log('  minimal repro:');
  console.log(report.failure.repro.split('\n').map((l) => '    ' + l).join('\n'));
  if (report.failure.before.length) console.log(`  sent just before the first failure:\n${report.failure.before.map((b) => '    ' + b).join('\n')}`);
  console.log(`  replay: npm run fuzz -- --requests=${report.requests} --seed=${report.seed}`);
}
for (const p of report.probes) console.log(`  uWS probe                ${p}`);
for (const a of report.afterRun) console.log(`  AFTER THE RUN: ${a}`);
console.log(`  result                   ${report.failure || report.afterRun.length ? 'FAIL' : 'clean'}`);
process.exit(report.failure || report.afterRun.length ? 1 : 0);
