import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, ROOT } from './helpers/server.js';

/**
 * The Python and Go SDKs, each tested against the real server: sdk/install-deps.sh installs
 * what they need from Debian packages when it is missing (python3-websockets, golang-go,
 * golang-github-gorilla-websocket-dev), then sdk/run-tests.sh starts two servers with the CLI
 * this build produced and runs both suites (unittest, go test).
 */

// The compiled test sits in <out>/dist/test; the sdk/ folder is in the source tree.
const SDK = [path.join(ROOT, 'sdk'), path.join(process.cwd(), 'sdk')].find((d) => fs.existsSync(path.join(d, 'run-tests.sh')));

interface Run {
  code: number | null;
  out: string;
}

function run(cmd: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      out += `\n[killed after ${timeoutMs} ms]`;
      try {
        process.kill(-child.pid!, 'SIGTERM'); // the script and the servers it started
      } catch {
        child.kill('SIGTERM');
      }
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

let install: Run;
let suites: Run;

before(async () => {
  assert.ok(SDK, 'sdk/run-tests.sh not found next to the build or in the working directory');
  install = await run('bash', [path.join(SDK, 'install-deps.sh')], {}, 150_000);
  if (install.code !== 0) return;
  suites = await run('bash', [path.join(SDK, 'run-tests.sh')], { PANTHERS_CLI: CLI }, 200_000);
}, { timeout: 360_000 });

test('sdk/install-deps.sh provides python3-websockets, go and gorilla/websocket', () => {
  assert.equal(install.code, 0, install.out);
  assert.match(install.out, /sdk deps: (all present|installed)/);
});

test('the Python SDK suite passes against the real server', () => {
  assert.ok(suites, 'the suites did not run (install failed)');
  const ran = /Ran (\d+) tests? in [\d.]+s\s+OK\b(?: \(skipped=(\d+)\))?/.exec(suites.out);
  assert.ok(ran, `no passing unittest summary in:\n${suites.out.slice(-4000)}`);
  const [total, skipped] = [Number(ran[1]), Number(ran[2] ?? 0)];
  assert.ok(total - skipped >= 14, `only ${total - skipped} Python tests passed`);
  for (const name of ['test_3_chat_sse_ws_history_clear', 'test_refreshes_on_token_expired_and_retries', 'test_rate_limited_retries_wait_retry_after', 'test_exchange_is_transparent']) {
    assert.match(suites.out, new RegExp(`${name} .*\\.\\.\\. ok`), `${name} did not pass`);
  }
});

test('the Go SDK suite passes against the real server', () => {
  assert.ok(suites, 'the suites did not run (install failed)');
  assert.doesNotMatch(suites.out, /^--- FAIL/m, suites.out.slice(-4000));
  assert.match(suites.out, /^ok\s+github\.com\/secret-panthers\/secret-panthers\/sdk\/go\b/m, suites.out.slice(-4000));
  const passed = suites.out.match(/^--- PASS: /gm)?.length ?? 0;
  assert.ok(passed >= 9, `only ${passed} Go tests passed`);
  assert.match(suites.out, /^--- PASS: TestDeployWatchChatHistoryClearStop/m);
  assert.match(suites.out, /^--- PASS: TestRemoteAgentTokenExchange/m);
});

test('sdk/run-tests.sh exits 0', () => {
  assert.ok(suites, 'the suites did not run (install failed)');
  assert.equal(suites.code, 0, suites.out.slice(-4000));
});
