import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers/server.js';
import { median, medianRatio, quantile } from '../bench/lib/stats.js';
import { parseWrk, wrkTimeMs } from '../bench/lib/wrk.js';

// The harness is a benchmark, never a timed test: this runs `--quick` once to keep it working
// and checks only that it finishes, prints its table and writes results of the documented shape.

test('stats: medians, quantiles and the median of per-round ratios', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([1, 2, 3, 4]), 2.5);
  assert.equal(quantile([1, 2, 3, 4, 5], 1), 5);
  assert.ok(Number.isNaN(median([])));
  // Round 2's machine was twice as slow for both: the ratio holds where absolutes drift.
  assert.equal(medianRatio([100, 50, 110], [200, 100, 200]), 0.5);
});

test('wrk output is parsed into requests/s, percentiles and errors', () => {
  const out = `Running 2s test @ http://127.0.0.1:1/x
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   250.00us  100.00us   2.00ms   90.00%
  Latency Distribution
     50%  231.00us
     75%  280.00us
     90%  350.00us
     99%    1.20ms
  201234 requests in 2.00s, 30.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec: 100617.00
Transfer/sec:     15.00MB`;
  const r = parseWrk(out);
  assert.equal(r.requestsPerSec, 100617);
  assert.equal(r.p50Ms, 0.231);
  assert.equal(r.p99Ms, 1.2);
  assert.equal(r.requests, 201234);
  assert.equal(r.errors, 3);
  assert.equal(wrkTimeMs('1.5s'), 1500);
});

test('npm run bench -- --quick exits 0, prints the table and writes results JSON', { timeout: 240_000 }, async () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-quick-')), 'latest.json');
  const started = Date.now();
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/bench/run.js'), '--quick', `--out=${out}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 230_000);
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  clearTimeout(killer);
  const seconds = (Date.now() - started) / 1000;
  assert.equal(code, 0, `bench --quick exited ${code} after ${seconds.toFixed(0)} s:\n${text.slice(-4000)}`);

  // A progress line per scenario and the table's header.
  for (const name of ['http_auth_get', 'chat_fanout', 'sse_stream', 'login', 'actors', 'sqlite_writes', 'cold_start']) {
    assert.match(text, new RegExp(`\\[bench\\] ${name}: running`));
  }
  assert.match(text, /scenario\s+metric\s+unit\s+project\s+peer\s+peer value\s+ratio/);

  const report = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.equal(typeof report.machine, 'object');
  assert.equal(typeof report.machine.cpus, 'number');
  assert.equal(report.node, process.version);
  assert.ok(!Number.isNaN(Date.parse(report.started_at)));
  assert.ok(Array.isArray(report.scenarios) && report.scenarios.length >= 7);
  const names = new Set(report.scenarios.map((s: { name: string }) => s.name));
  for (const n of ['http_auth_get', 'chat_fanout', 'sse_stream', 'login', 'actors', 'sqlite_writes', 'cold_start']) assert.ok(names.has(n), `no ${n} in results`);
  for (const s of report.scenarios) {
    assert.equal(typeof s.name, 'string');
    assert.equal(typeof s.metric, 'string');
    assert.equal(typeof s.unit, 'string');
    // A figure, or null with the reason (e.g. "n/a (endpoint missing)").
    assert.ok(typeof s.project === 'number' || (s.project === null && typeof s.note === 'string'), `${s.name}/${s.metric}: project ${s.project}`);
    assert.equal(typeof s.peers, 'object');
    assert.equal(typeof s.ratios, 'object');
    for (const [peer, ratio] of Object.entries(s.ratios)) {
      assert.ok(peer in s.peers, `${s.name}/${s.metric}: ratio for unknown peer ${peer}`);
      assert.equal(typeof ratio, 'number');
      if (typeof s.project === 'number' && typeof s.peers[peer] === 'number' && s.peers[peer] !== 0) {
        // One round in --quick: the median ratio is that round's project/peer.
        assert.ok(Math.abs((ratio as number) - s.project / s.peers[peer]) <= 0.02 * Math.abs(s.project / s.peers[peer]) + 0.01, `${s.name}/${s.metric}: ratio ${ratio}`);
      }
    }
  }

  // The chart beside the results: one self-contained SVG, a panel per charted metric, goal lines.
  const svg = fs.readFileSync(out.replace(/\.json$/, '.svg'), 'utf8');
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.doesNotMatch(svg, /<script|href=/, 'no scripts, nothing fetched');
  assert.match(svg, /http_auth_get · requests_per_s/);
  assert.match(svg, /express-socketio/);
  assert.match(svg, /stroke-dasharray/, 'goals drawn as lines');
});

test('the chart escapes what it prints and marks met and missed goals', async () => {
  const { renderSvg } = await import('../bench/lib/chart.js');
  const row = (project: number, uws: number) => ({
    name: 'chat_fanout', metric: 'cpu_pct', unit: '% core <x>', better: 'lower' as const, project,
    peers: { 'uws-raw': uws }, ratios: { 'uws-raw': project / uws },
  });
  const report = { machine: { hostname: 'h', cpus: 2, cpu_model: 'c', memory_gb: 1, kernel: 'k', pinned: true, wrk: true }, node: 'v20', started_at: new Date().toISOString(), mode: 'quick' as const };
  const met = renderSvg({ ...report, scenarios: [row(12, 10)] });
  assert.match(met, /% core &lt;x&gt;/);
  assert.match(met, /1\.20x uws-raw/);
  assert.match(met, /&lt;= 1\.3x uws-raw \(met\)/);
  assert.match(met, /stroke="#1a7f37"/);
  const missed = renderSvg({ ...report, scenarios: [row(20, 10)] });
  assert.match(missed, /\(missed\)/);
  assert.match(missed, /stroke="#cf222e" stroke-width="2"/);
});
