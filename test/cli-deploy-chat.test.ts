import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, request, spawnCli, tempDir } from './helpers/server.js';

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** ms after start of each stdout write, to see streaming */
  stdoutTimes: number[];
}

/** Runs `panthers ...` as a real child process (stdin piped from `input`, not a TTY). */
function cli(args: string[], input?: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const run: CliRun = { code: -1, stdout: '', stderr: '', stdoutTimes: [] };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`panthers ${args[0]} did not finish in 30 s:\n${run.stdout}\n${run.stderr}`));
    }, 30_000);
    child.stdout.on('data', (d: Buffer) => {
      run.stdout += d.toString();
      run.stdoutTimes.push(Date.now() - started);
    });
    child.stderr.on('data', (d: Buffer) => (run.stderr += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      run.code = code ?? -1;
      resolve(run);
    });
    child.stdin.end(input ?? '');
  });
}

test('CLI: serve, wallet new, nft assign, login, deploy (progress), status, chat (streamed, one-shot and stdin, SSE and WS), stop', async () => {
  const dataDir = tempDir();
  // A small per-token delay so the answer really arrives in pieces.
  const server = await spawnCli(['serve', '--port', '0', '--data-dir', dataDir], { PANTHERS_RATE_LIMITS: 'off', PANTHERS_SCRIPTED_DELAY_MS: '15' });
  try {
    const made = await cli(['wallet', 'new', '--data-dir', dataDir]);
    assert.equal(made.code, 0, made.stderr);
    const { address, key_file } = JSON.parse(made.stdout) as { address: string; key_file: string };
    const assigned = await cli(['nft', 'assign', '42', address, '--data-dir', dataDir]);
    assert.equal(assigned.code, 0, assigned.stderr);

    const login = await cli(['login', '--key', key_file, '--nft', '42', '--url', server.url]);
    assert.equal(login.code, 0, login.stderr);
    // The session file the commands read: login's JSON as printed (`panthers login ... > FILE`).
    const sessionFile = path.join(tempDir('panthers-cli-'), 'session.json');
    fs.writeFileSync(sessionFile, login.stdout, { mode: 0o600 });
    const common = ['--session', sessionFile, '--url', server.url];

    // Without a session: a clear message, not a stack trace.
    const noSession = await cli(['status', '--session', path.join(dataDir, 'none.json'), '--url', server.url]);
    assert.equal(noSession.code, 1);
    assert.match(noSession.stderr, /does not exist \(run `panthers login` first\)/);

    const deploy = await cli(['deploy', '--nft', '42', '--provider', 'local', ...common]);
    assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
    assert.match(deploy.stdout, /^Deployment [0-9a-f-]+ of NFT 42 accepted \(local, about 1 s\)$/m);
    // Not a TTY: plain progress lines, ending at 100% running, then the endpoint.
    const bars = deploy.stdout.split('\n').filter((l) => l.startsWith('['));
    assert.ok(bars.length >= 1, deploy.stdout);
    for (const l of bars) assert.match(l, /^\[[#-]{24}\]\s+\d{1,3}% (pending|deploying|running)/);
    assert.match(bars.at(-1)!, /^\[#{24}\] 100% running/);
    assert.match(deploy.stdout, /^Running: http:\/\/agent-42\.localhost:\d+$/m);

    const again = await cli(['deploy', '--nft', '42', ...common]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^panthers: ALREADY_EXISTS 409: /m);

    const status = await cli(['status', ...common]);
    assert.equal(status.code, 0, status.stderr);
    const dep = JSON.parse(status.stdout);
    assert.equal(dep.nft_token_id, '42');
    assert.equal(dep.status, 'running');

    const chat = await cli(['chat', '--message', 'Hello from the command line', ...common]);
    assert.equal(chat.code, 0, chat.stderr);
    assert.match(chat.stdout, /^You said: "Hello from the command line" \(5 words\)\. This is the first turn/);
    assert.ok(chat.stdoutTimes.length >= 3, `tokens printed as they arrive: ${chat.stdoutTimes.length} writes`);
    assert.ok(chat.stdoutTimes.at(-1)! - chat.stdoutTimes[0]! >= 100, `writes spread over time: ${chat.stdoutTimes.join(',')}`);
    const meta = /\[conversation ([A-Za-z0-9-]+) · (\d+) tokens\]/.exec(chat.stderr);
    assert.ok(meta, chat.stderr);

    // What the CLI printed is what the server stored.
    const tokens = JSON.parse(fs.readFileSync(sessionFile, 'utf8')) as { access_token: string };
    const history = await request(server.url, 'GET', `/v1/agents/42/chat/history?conversation_id=${meta[1]}`, { token: tokens.access_token });
    assert.equal(history.status, 200, history.text);
    assert.equal(history.body.messages[1].content, chat.stdout.trim());

    // The same conversation over the WebSocket.
    const ws = await cli(['chat', '--ws', '--conversation', meta[1]!, '--message', 'And again?', ...common]);
    assert.equal(ws.code, 0, ws.stderr);
    assert.match(ws.stdout, /^You asked: "And again\?" \(2 words\)\. This is turn 2 of our conversation\./);

    // Interactive mode on piped stdin: one answer per line, one conversation.
    const interactive = await cli(['chat', ...common], 'first line\n\nsecond line\n/quit\nnot sent\n');
    assert.equal(interactive.code, 0, interactive.stderr);
    const answers = interactive.stdout.trim().split('\n');
    assert.equal(answers.length, 2, interactive.stdout);
    assert.match(answers[0]!, /^You said: "first line" .* This is the first turn/);
    assert.match(answers[1]!, /^You said: "second line" .* This is turn 2 of our conversation/);

    const stop = await cli(['stop', '--wait', ...common]);
    assert.equal(stop.code, 0, stop.stderr);
    const stopped = JSON.parse(stop.stdout);
    assert.equal(stopped.deployment_id, dep.deployment_id);
    assert.equal(stopped.status, 'stopped');
    const after = await cli(['status', ...common]);
    assert.equal(JSON.parse(after.stdout).status, 'stopped');

    const refused = await cli(['chat', '--message', 'anyone?', ...common]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^panthers: NOT_FOUND 404: No agent is running for NFT 42/m);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});
