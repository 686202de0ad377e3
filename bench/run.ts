import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectTools, TASKSET_MISSING_HINT, WRK_MISSING_HINT } from './lib/tools.js';
import { FULL, QUICK, type BenchContext, type Scenario } from './lib/context.js';
import { machineInfo, writeReport, type BenchReport, type MetricResult } from './lib/results.js';
import { renderTable } from './lib/table.js';
import { writeSvg } from './lib/chart.js';
import { renderProfile, summarizeProfiles } from './lib/profile.js';
import { World } from './lib/world.js';
import { CLI } from './lib/servers.js';
import { killAllChildren } from './lib/proc.js';
import { httpAuthGet } from './scenarios/http-auth-get.js';
import { chatFanout } from './scenarios/chat-fanout.js';
import { sseStream } from './scenarios/sse-stream.js';
import { login } from './scenarios/login.js';
import { actors } from './scenarios/actors.js';
import { sqliteWrites } from './scenarios/sqlite-writes.js';
import { coldStart } from './scenarios/cold-start.js';
import { cluster } from './scenarios/cluster.js';

/**
 * `npm run bench` (full) and `npm run bench -- --quick` (under 60 s): runs the project and its
 * peers on 127.0.0.1, interleaved round by round, prints a table and writes
 * bench/results/latest.json and latest.svg (the chart). A benchmark, never a timed test: nothing here asserts a speed.
 */
const SCENARIOS: Scenario[] = [httpAuthGet, chatFanout, sseStream, login, actors, sqliteWrites, coldStart, cluster];

const HELP = `Usage: npm run bench [-- options]
  --quick            small and short (1 round, about a second per figure; under 60 s in all)
  --only=a,b         run only these scenarios (${SCENARIOS.map((s) => s.name).join(', ')})
  --rounds=N         interleaved rounds (default 5, quick 1)
  --out=FILE         results file (default bench/results/latest.json)
  --participants=a,b measure only these (project, uws-raw, uws-sqlite, fastify, socketio,
                     express-socketio, sqlite-raw)
  --before=DIST      also measure the project built at another commit (DIST/bin/panthers.js) as
                     'project-before' in http_auth_get, chat_fanout and sse_stream: a before/after
                     under the same load
  --profile[=DIR]    run the project under --cpu-prof (profiles in DIR/<scenario>, default
                     bench/results/profiles) and print where its CPU time went per scenario;
                     peers are profiled too, into DIR/<scenario>/peers/<peer>`;

function arg(name: string): string | undefined {
  const a = process.argv.slice(2).find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  if (!a) return undefined;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : '';
}

async function main(): Promise<number> {
  if (arg('help') !== undefined) {
    console.log(HELP);
    return 0;
  }
  const quick = arg('quick') !== undefined;
  const sizes = { ...(quick ? QUICK : FULL) };
  const rounds = arg('rounds');
  if (rounds) sizes.rounds = Math.max(1, Number(rounds));
  const only = arg('only')?.split(',').filter(Boolean);
  const unknown = only?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
  if (unknown.length) {
    console.error(`unknown scenario(s): ${unknown.join(', ')}\n${HELP}`);
    return 2;
  }
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const out = path.resolve(arg('out') || path.join(repoRoot, 'bench/results/latest.json'));
  if (!fs.existsSync(CLI)) {
    console.error(`${CLI} not found: build first (npm run build)`);
    return 2;
  }
  // bin/panthers.ts runs the linked CLI only when it is at least as new as the last tsc; a plain
  // tsc after the build would silently measure the module graph (twice the start-up CPU).
  const dist = path.dirname(path.dirname(CLI));
  const bundle = path.join(dist, 'panthers.cjs');
  const tsc = path.join(dist, '.tsbuildinfo');
  if (fs.existsSync(tsc) && (!fs.existsSync(bundle) || fs.statSync(bundle).mtimeMs < fs.statSync(tsc).mtimeMs) && process.env.PANTHERS_NO_BUNDLE !== '1') {
    console.error(`${bundle} is older than the last tsc: run npm run build first (or set PANTHERS_NO_BUNDLE=1 to measure the module graph)`);
    return 2;
  }

  const participants = arg('participants')?.split(',').filter(Boolean);
  const profile = arg('profile');
  const profileRoot = profile === undefined ? undefined : path.resolve(profile || path.join(repoRoot, 'bench/results/profiles'));
  if (profileRoot) fs.rmSync(profileRoot, { recursive: true, force: true });

  const tools = detectTools();
  if (!tools.wrk) console.log(`[bench] ${WRK_MISSING_HINT}`);
  if (tools.loadCpu === undefined) console.log(`[bench] ${TASKSET_MISSING_HINT}`);
  else {
    // The harness itself is load (sign-ins, polling): keep it off the server's CPU too.
    try {
      execFileSync(tools.taskset!, ['-p', '-c', String(tools.loadCpu), String(process.pid)], { stdio: 'ignore' });
    } catch {
      console.log('[bench] could not pin the harness to the load CPU');
    }
  }
  const started = Date.now();
  const report: BenchReport = {
    machine: machineInfo(tools.loadCpu !== undefined, Boolean(tools.wrk)),
    node: process.version,
    started_at: new Date(started).toISOString(),
    mode: quick ? 'quick' : 'full',
    scenarios: [],
  };
  console.log(`[bench] ${quick ? 'quick' : 'full'} run: ${sizes.rounds} round(s); server on CPU ${tools.serverCpu ?? '-'}, load on CPU ${tools.loadCpu ?? '-'}; open-file limit ${tools.maxFiles}`);

  const world = new World(tools);
  const before = arg('before');
  if (before) {
    world.beforeCli = path.resolve(before, 'bin/panthers.js');
    if (!fs.existsSync(world.beforeCli)) {
      console.error(`${world.beforeCli} not found: build that commit first`);
      return 2;
    }
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      console.log(`[bench] ${sig}: stopping every server and load worker`);
      killAllChildren();
      world.cleanup();
      process.exit(130);
    });
  }
  const errors: string[] = [];
  try {
    console.log('[bench] preparing: project sign-in, local deployment, one scripted turn');
    await world.prepare((m) => console.log(`[bench]   ${m}`));
    for (const [cap, why] of world.missing) console.log(`[bench]   project ${cap}: ${why}`);
    console.log(`[bench]   peers stream ${world.chunks.length} chunks per turn (${world.chunksFrom === 'project' ? "the project's own scripted turn" : 'a stand-in: the project chat is missing'})`);

    const selected = SCENARIOS.filter((s) => !only || only.includes(s.name));
    for (const s of selected) {
      const t0 = Date.now();
      console.log(`[bench] ${s.name}: running`);
      const profileDir = profileRoot && path.join(profileRoot, s.name);
      world.profileDir = profileDir;
      const ctx: BenchContext = {
        tools, quick, sizes, world, errors, participants,
        progress: (m) => console.log(`[bench] ${s.name}: ${m}`),
      };
      let rows: MetricResult[];
      try {
        rows = await s.run(ctx);
      } catch (e) {
        const msg = (e as Error).stack ?? String(e);
        errors.push(`${s.name}: ${msg}`);
        console.log(`[bench] ${s.name}: FAILED ${msg}`);
        continue;
      }
      report.scenarios.push(...rows);
      writeReport(out, report);
      const prof = profileDir && summarizeProfiles(profileDir);
      if (prof) {
        const text = renderProfile(prof);
        fs.writeFileSync(path.join(profileDir, 'summary.txt'), text + '\n');
        console.log(`[bench] ${s.name}: project profile (${profileDir})\n${text}`);
      }
      console.log(`[bench] ${s.name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    world.cleanup();
  }
  report.finished_at = new Date().toISOString();
  writeReport(out, report);
  const svg = writeSvg(out, report);
  console.log('');
  console.log(renderTable(report.scenarios));
  console.log('');
  console.log(`ratio = project / peer, median of the per-round ratios; read it with the "better" direction in ${path.relative(process.cwd(), out) || out}`);
  console.log(`[bench] finished in ${((Date.now() - started) / 1000).toFixed(1)} s; results in ${out}, chart in ${svg}`);
  if (errors.length) {
    console.log(`[bench] harness or peer errors (the figures above miss them):\n  ${errors.join('\n  ')}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
