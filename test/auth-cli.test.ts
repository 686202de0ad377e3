import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { verifyMessage } from 'ethers';
import { CLI, request, spawnCli, tempDir } from './helpers/server.js';

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('CLI: wallet new + nft assign + login against a running server', async () => {
  const dataDir = tempDir();
  const server = await spawnCli(['serve', '--port', '0', '--data-dir', dataDir], { PANTHERS_RATE_LIMITS: 'off' });
  try {
    const made = await cli(['wallet', 'new', '--data-dir', dataDir]);
    assert.equal(made.code, 0, made.stderr);
    const { address, key_file } = JSON.parse(made.stdout) as { address: string; key_file: string };
    assert.match(address, /^0x[0-9a-fA-F]{40}$/);
    assert.ok(key_file.startsWith(`${dataDir}/wallets/`));
    assert.equal(fs.statSync(key_file).mode & 0o777, 0o600);
    const key = JSON.parse(fs.readFileSync(key_file, 'utf8'));
    // ethers agrees the key file's key is this address.
    const { Wallet } = await import('ethers');
    assert.equal(new Wallet(key.private_key).address, address);

    // Not the owner yet: login is refused with the server's code.
    const refused = await cli(['login', '--key', key_file, '--nft', '42', '--url', server.url]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /FORBIDDEN/);

    const assigned = await cli(['nft', 'assign', '42', address.toLowerCase(), '--data-dir', dataDir]);
    assert.equal(assigned.code, 0, assigned.stderr);
    const listed = await cli(['nft', 'list', '--data-dir', dataDir]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).map((r: { nft_token_id: string; owner: string }) => [r.nft_token_id, r.owner]), [['42', address]]);

    const login = await cli(['login', '--key', key_file, '--nft', '42', '--url', server.url]);
    assert.equal(login.code, 0, login.stderr);
    const tokens = JSON.parse(login.stdout);
    assert.equal(tokens.wallet_address, address);
    assert.equal(tokens.expires_in, 3600);
    const session = await request(server.url, 'GET', '/v1/auth/session', { token: tokens.access_token });
    assert.equal(session.status, 200, session.text);
    assert.equal(session.body.wallet_address, address);
    assert.equal(session.body.nft_token_id, '42');
    const refreshed = await request(server.url, 'POST', '/v1/auth/refresh', { body: { refresh_token: tokens.refresh_token } });
    assert.equal(refreshed.status, 200);

    // The signature the CLI made is a standard personal_sign: check one independently.
    const ch = await request(server.url, 'POST', '/v1/auth/challenge', { body: { wallet_address: address, nft_token_id: '42' } });
    const { signPersonal } = await import('../src/auth/evm-signature.js');
    const sig = signPersonal(ch.body.message, new Uint8Array(Buffer.from(key.private_key.slice(2), 'hex')));
    assert.equal(verifyMessage(ch.body.message, sig), address);

    const badOwner = await cli(['nft', 'assign', '43', 'not-an-address', '--data-dir', dataDir]);
    assert.equal(badOwner.code, 2);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});
