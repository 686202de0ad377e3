import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { spawnCli, tempDir, request, waitFor, startServer, type ServerProcess, type TestServer } from './helpers/server.js';
import { signIn } from './helpers/wallets.js';
import { signInProcess } from './helpers/process-sign-in.js';
import { startFakeAkash, type FakeAkash } from './fakes/akash-api.js';
import { startFakeSecretVm } from './fakes/secretvm-api.js';
import type { JournalEntry } from './fakes/fault-injection.js';
import { loadConfig } from '../src/config.js';
import { createAkashProvider } from '../adapters/providers/akash/index.js';
import { captureLogger, contractSpec, recordingContext } from './helpers/provider-contract.js';

/**
 * "Nothing is left billing after a stop; nothing is done twice by a retry": each case of the
 * deployment lifecycle where money can leak, checked against the provider fakes' request journal.
 * Restarts are real: a `panthers serve` child process killed with SIGKILL.
 */

const calls = (journal: JournalEntry[], method: string, re: RegExp) => journal.filter((j) => j.method === method && re.test(j.path));
const indexOf = (journal: JournalEntry[], method: string, re: RegExp, from = 0) => journal.findIndex((j, i) => i >= from && j.method === method && re.test(j.path));
const CREATE_AKASH = /^\/v1\/deployments$/;
const ONE_AKASH = /^\/v1\/deployments\/\d+$/;

async function status(server: TestServer, nft: string, token: string) {
  return (await server.request('GET', `/v1/deployments/${nft}`, { token })).body;
}

async function settled(get: () => Promise<any>, want: string[], timeoutMs = 15_000) {
  return waitFor(async () => {
    const b = await get();
    return want.includes(b.status) && b;
  }, timeoutMs);
}

const akashEnv = (fake: FakeAkash, key: string, extra: Record<string, string> = {}) => ({
  PANTHERS_AKASH_API_URL: fake.url, PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true', PANTHERS_AKASH_API_KEY: key, PANTHERS_AKASH_POLL_MS: '20', ...extra,
});

describe('DELETE while a remote create is in flight', () => {
  test('akash: stopping until the create settles, then the created deployment is closed; never stopped with it open', async () => {
    const fake = await startFakeAkash({ apiKey: 'k', faults: [{ method: 'POST', path: '/v1/deployments', kind: 'delay-after', delayMs: 700 }] });
    const server = await startServer(akashEnv(fake, 'k'));
    try {
      const me = await signIn(server, { nft: '1201' });
      const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '1201', provider: 'akash' } });
      assert.equal(r.status, 202, r.text);
      await waitFor(() => fake.counts.deploymentsCreated === 1);
      const del = await server.request('DELETE', '/v1/deployments/1201', { token: me.access_token });
      assert.equal(del.status, 200, del.text);
      assert.equal(del.body.status, 'stopping', 'not stopped while the create is unanswered');
      assert.equal((await status(server, '1201', me.access_token)).status, 'stopping');
      const done = await settled(() => status(server, '1201', me.access_token), ['stopped', 'failed']);
      assert.equal(done.status, 'stopped', JSON.stringify(done));
      const [dep] = fake.deployments.values();
      assert.equal(dep!.state, 'closed', 'the deployment the create made is closed');
      assert.equal(fake.activeDeployments().length, 0);
      const j = fake.journal;
      const create = indexOf(j, 'POST', CREATE_AKASH);
      const close = indexOf(j, 'DELETE', new RegExp(`^/v1/deployments/${dep!.dseq}$`));
      assert.ok(close > create, 'closed after the create answered');
      assert.equal(calls(j, 'POST', /^\/v1\/leases$/).length, 0, 'no lease after the stop');
      assert.equal(calls(j, 'POST', CREATE_AKASH).length, 1, 'one create');
      // The event log shows stopping before stopped, and stopped only after the close.
      const events = server.app.ctx.db.prepare('SELECT status, created_at FROM deployment_events WHERE deployment_id = ? ORDER BY id').all(r.body.deployment_id) as { status: string; created_at: number }[];
      const stoppedAt = events.find((e) => e.status === 'stopped')!.created_at;
      assert.ok(stoppedAt >= j[close]!.at, 'stopped recorded after the provider closed the deployment');
    } finally {
      await server.stop();
      await fake.close();
    }
  });

  test('akash: a create whose answer never comes is found by its SDL marker and closed', async () => {
    const fake = await startFakeAkash({ apiKey: 'k', faults: [{ method: 'POST', path: '/v1/deployments', kind: 'hang-after' }] });
    const server = await startServer(akashEnv(fake, 'k', { PANTHERS_PROVIDER_TIMEOUT_MS: '600' }));
    try {
      const me = await signIn(server, { nft: '1202' });
      const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '1202', provider: 'akash' } });
      assert.equal(r.status, 202, r.text);
      await waitFor(() => fake.counts.deploymentsCreated === 1);
      const del = await server.request('DELETE', '/v1/deployments/1202', { token: me.access_token });
      assert.equal(del.body.status, 'stopping');
      const done = await settled(() => status(server, '1202', me.access_token), ['stopped', 'failed']);
      assert.equal(done.status, 'stopped', JSON.stringify(done));
      assert.equal(fake.activeDeployments().length, 0, 'the unanswered create was closed');
      const j = fake.journal;
      const [dep] = fake.deployments.values();
      assert.ok(indexOf(j, 'GET', /^\/v1\/deployments$/) > indexOf(j, 'POST', CREATE_AKASH), 'looked up by marker');
      assert.equal(calls(j, 'DELETE', new RegExp(`^/v1/deployments/${dep!.dseq}$`)).length, 1);
      assert.equal(calls(j, 'POST', CREATE_AKASH).length, 1, 'not created again');
    } finally {
      await server.stop();
      await fake.close();
    }
  });

  test('secret_vm: stopping until the create settles, then the VM is terminated', async () => {
    const fake = await startFakeSecretVm({ apiKey: 'svm', faults: [{ method: 'POST', path: '/api/vm/create', kind: 'delay-after', delayMs: 700 }] });
    const server = await startServer({ PANTHERS_SECRETVM_API_URL: fake.url, PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true', PANTHERS_SECRETVM_API_KEY: 'svm', PANTHERS_SECRETVM_POLL_MS: '20' });
    try {
      const me = await signIn(server, { nft: '1203' });
      const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '1203', provider: 'secret_vm' } });
      assert.equal(r.status, 202, r.text);
      await waitFor(() => fake.counts.vmsCreated === 1);
      const del = await server.request('DELETE', '/v1/deployments/1203', { token: me.access_token });
      assert.equal(del.body.status, 'stopping');
      const done = await settled(() => status(server, '1203', me.access_token), ['stopped', 'failed']);
      assert.equal(done.status, 'stopped', JSON.stringify(done));
      assert.equal(fake.liveVms().length, 0, 'the VM the create made is terminated');
      const [vm] = fake.vms.values();
      const j = fake.journal;
      assert.ok(indexOf(j, 'DELETE', new RegExp(`^/api/vm/${vm!.vmId}/terminate$`)) > indexOf(j, 'POST', /^\/api\/vm\/create$/));
      assert.equal(calls(j, 'POST', /^\/api\/vm\/create$/).length, 1);
    } finally {
      await server.stop();
      await fake.close();
    }
  });
});

describe('a failed deployment that holds a ref', () => {
  test('akash: a redeploy releases it before creating; while it cannot be released nothing new is created', async () => {
    // The lease is refused for lack of funds and every close fails: the row ends failed, holding its dseq.
    const fake = await startFakeAkash({
      apiKey: 'k', insufficientFunds: 'lease',
      faults: [{ method: 'DELETE', path: '/v1/deployments/', kind: '500', times: 1_000 }],
    });
    const server = await startServer(akashEnv(fake, 'k', { PANTHERS_PROVIDER_TIMEOUT_MS: '500' }));
    try {
      const me = await signIn(server, { nft: '1204' });
      const first = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '1204', provider: 'akash' } });
      assert.equal(first.status, 202, first.text);
      const failed = await settled(() => status(server, '1204', me.access_token), ['failed', 'running'], 30_000);
      assert.equal(failed.status, 'failed');
      const [old] = fake.deployments.values();
      await waitFor(() => {
        const row = server.app.ctx.db.prepare('SELECT provider_ref FROM deployments WHERE id = ?').get(first.body.deployment_id) as { provider_ref: string };
        return JSON.parse(row.provider_ref)?.dseq === old!.dseq && fake.calls('DELETE', '/v1/deployments/') >= 5;
      }, 30_000);
      assert.equal(old!.state, 'active', 'still open at the provider (its close failed)');

      // Still cannot be released: the redeploy is refused and nothing is created.
      const refused = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '1204', provider: 'akash' } });
      assert.equal(refused.status, 503, refused.text);
      assert.match(refused.body.error.message, /could not be released/);
      assert.equal(fake.counts.deploymentsCreated, 1, 'nothing new while the old one bills');

      // The provider recovers: the redeploy closes the old deployment first, then creates.
      fake.faults.splice(0);
      fake.opts.insufficientFunds = undefined;
      const mark = fake.journal.length;
      const again = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '1204', provider: 'akash' } });
      assert.equal(again.status, 202, again.text);
      assert.notEqual(again.body.deployment_id, first.body.deployment_id);
      const running = await settled(() => status(server, '1204', me.access_token), ['running', 'failed']);
      assert.equal(running.status, 'running', JSON.stringify(running));
      const j = fake.journal;
      const close = indexOf(j, 'DELETE', new RegExp(`^/v1/deployments/${old!.dseq}$`), mark);
      const create = indexOf(j, 'POST', CREATE_AKASH, mark);
      assert.ok(close >= 0 && close < create, 'the old deployment was closed before the new create');
      assert.equal(old!.state, 'closed');
      assert.equal(fake.activeDeployments().length, 1, 'only the new deployment is open');
      const oldRow = server.app.ctx.db.prepare('SELECT status, provider_ref FROM deployments WHERE id = ?').get(first.body.deployment_id) as { status: string; provider_ref: string | null };
      assert.deepEqual(oldRow, { status: 'failed', provider_ref: null }, 'the failed row no longer holds a ref');
      await server.request('DELETE', '/v1/deployments/1204', { token: me.access_token });
      await settled(() => status(server, '1204', me.access_token), ['stopped']);
      assert.equal(fake.activeDeployments().length, 0);
    } finally {
      await server.stop();
      await fake.close();
    }
  });
});

const serveEnv = (dir: string, extra: Record<string, string> = {}) => ({
  PORT: '0', PANTHERS_DATA_DIR: dir, PANTHERS_RATE_LIMITS: 'off', PANTHERS_HEALTH_INTERVAL_MS: '200', ...extra,
});

async function stopProcess(srv: ServerProcess | undefined): Promise<void> {
  if (!srv || srv.child.exitCode !== null) return;
  srv.child.kill('SIGTERM');
  await srv.exited;
}

async function processStatus(srv: ServerProcess, nft: string, token: string, want: string[], timeoutMs = 20_000) {
  return waitFor(async () => {
    const g = await request(srv.url, 'GET', `/v1/deployments/${nft}`, { token });
    return want.includes(g.body.status) && g.body;
  }, timeoutMs);
}

describe('restart (SIGKILL) while a create is in flight', () => {
  test('akash: recovery without a saved dseq looks up the marker before creating; one deployment stays open', async () => {
    const fake = await startFakeAkash({ apiKey: 'k', faults: [{ method: 'POST', path: '/v1/deployments', kind: 'hang-after' }] });
    const dir = tempDir();
    const env = serveEnv(dir, akashEnv(fake, 'k', { PANTHERS_AKASH_POLL_MS: '50' }));
    let srv: ServerProcess | undefined = await spawnCli(['serve'], env);
    try {
      const token = await signInProcess(srv.url, dir, '1210');
      const r = await request(srv.url, 'POST', '/v1/deployments', { token, body: { nft_token_id: '1210', provider: 'akash' } });
      assert.equal(r.status, 202, r.text);
      await waitFor(() => fake.counts.deploymentsCreated === 1);
      srv.child.kill('SIGKILL'); // the create went through; its answer never reached us
      await srv.exited;
      const [lost] = fake.deployments.values();
      const mark = fake.journal.length;
      srv = await spawnCli(['serve'], env);
      const done = await processStatus(srv, '1210', token, ['running', 'failed']);
      assert.equal(done.status, 'running', JSON.stringify(done));
      assert.equal(done.deployment_id, r.body.deployment_id);
      const j = fake.journal;
      const lookup = indexOf(j, 'GET', /^\/v1\/deployments$/, mark);
      const close = indexOf(j, 'DELETE', new RegExp(`^/v1/deployments/${lost!.dseq}$`), mark);
      const create = indexOf(j, 'POST', CREATE_AKASH, mark);
      assert.ok(lookup >= 0 && lookup < create, 'looked up by marker before creating');
      assert.ok(close >= 0 && close < create, 'the lost create was closed before the new one');
      assert.equal(fake.activeDeployments().length, 1, 'one open deployment');
      assert.equal(fake.counts.leasesCreated, 1, 'one lease');
    } finally {
      await stopProcess(srv);
      await fake.close();
    }
  });

  test('akash, a console that does not return the SDL: the lost create is recognised by its manifest hash and closed', async () => {
    const fake = await startFakeAkash({ apiKey: 'k', sdlReadBack: false, faults: [{ method: 'POST', path: '/v1/deployments', kind: 'hang-after' }] });
    const dir = tempDir();
    // The same SDL after the restart (as in production, where the public URL does not change with the port).
    const env = serveEnv(dir, akashEnv(fake, 'k', { PANTHERS_AKASH_POLL_MS: '50', PANTHERS_PUBLIC_URL: 'http://orchestrator.test' }));
    let srv: ServerProcess | undefined = await spawnCli(['serve'], env);
    try {
      const token = await signInProcess(srv.url, dir, '1213');
      const r = await request(srv.url, 'POST', '/v1/deployments', { token, body: { nft_token_id: '1213', provider: 'akash' } });
      assert.equal(r.status, 202, r.text);
      await waitFor(() => fake.counts.deploymentsCreated === 1);
      srv.child.kill('SIGKILL');
      await srv.exited;
      const [lost] = fake.deployments.values();
      srv = await spawnCli(['serve'], env);
      const done = await processStatus(srv, '1213', token, ['running', 'failed']);
      assert.equal(done.status, 'running', JSON.stringify(done));
      await waitFor(() => lost!.state === 'closed', 5_000);
      assert.notEqual(done.details.dseq, lost!.dseq);
      assert.equal(fake.activeDeployments().length, 1, 'one open deployment');
      assert.equal(calls(fake.journal, 'DELETE', new RegExp(`^/v1/deployments/${lost!.dseq}$`)).length, 1);
    } finally {
      await stopProcess(srv);
      await fake.close();
    }
  });

  test('a failed deployment whose release failed is released by restart recovery', async () => {
    const fake = await startFakeAkash({
      apiKey: 'k', insufficientFunds: 'lease',
      faults: [{ method: 'DELETE', path: '/v1/deployments/', kind: '500', times: 1_000 }],
    });
    const dir = tempDir();
    const env = serveEnv(dir, akashEnv(fake, 'k', { PANTHERS_AKASH_POLL_MS: '20', PANTHERS_PROVIDER_TIMEOUT_MS: '500' }));
    let srv: ServerProcess | undefined = await spawnCli(['serve'], env);
    try {
      const token = await signInProcess(srv.url, dir, '1214');
      const r = await request(srv.url, 'POST', '/v1/deployments', { token, body: { nft_token_id: '1214', provider: 'akash' } });
      assert.equal(r.status, 202, r.text);
      await processStatus(srv, '1214', token, ['failed']);
      await waitFor(() => fake.calls('DELETE', '/v1/deployments/') >= 10, 30_000); // the adapter's close and the actor's release
      srv.child.kill('SIGKILL');
      await srv.exited;
      const [dep] = fake.deployments.values();
      assert.equal(dep!.state, 'active', 'left open by the failed releases');
      fake.faults.splice(0);
      srv = await spawnCli(['serve'], env);
      await waitFor(() => dep!.state === 'closed', 15_000);
      await waitFor(() => {
        const db = new Database(path.join(dir, 'panthers.db'), { readonly: true });
        try {
          return (db.prepare('SELECT provider_ref FROM deployments WHERE id = ?').get(r.body.deployment_id) as { provider_ref: string | null }).provider_ref === null;
        } finally {
          db.close();
        }
      });
      assert.equal(fake.activeDeployments().length, 0);
    } finally {
      await stopProcess(srv);
      await fake.close();
    }
  });

  test('akash: DELETE mid-create, then SIGKILL before the create answered: recovery closes it by marker and ends stopped', async () => {
    const fake = await startFakeAkash({ apiKey: 'k', faults: [{ method: 'POST', path: '/v1/deployments', kind: 'hang-after' }] });
    const dir = tempDir();
    const env = serveEnv(dir, akashEnv(fake, 'k', { PANTHERS_AKASH_POLL_MS: '50' }));
    let srv: ServerProcess | undefined = await spawnCli(['serve'], env);
    try {
      const token = await signInProcess(srv.url, dir, '1215');
      const r = await request(srv.url, 'POST', '/v1/deployments', { token, body: { nft_token_id: '1215', provider: 'akash' } });
      assert.equal(r.status, 202, r.text);
      await waitFor(() => fake.counts.deploymentsCreated === 1);
      const del = await request(srv.url, 'DELETE', '/v1/deployments/1215', { token });
      assert.equal(del.body.status, 'stopping');
      srv.child.kill('SIGKILL');
      await srv.exited;
      const [dep] = fake.deployments.values();
      assert.equal(dep!.state, 'active');
      srv = await spawnCli(['serve'], env);
      const done = await processStatus(srv, '1215', token, ['stopped', 'failed']);
      assert.equal(done.status, 'stopped', JSON.stringify(done));
      assert.equal(dep!.state, 'closed', 'the create that was in flight is closed');
      assert.equal(calls(fake.journal, 'POST', CREATE_AKASH).length, 1, 'never created again');
      assert.equal(fake.activeDeployments().length, 0);
    } finally {
      await stopProcess(srv);
      await fake.close();
    }
  });

  test('secret_vm: recovery without a saved VM id finds it by name and adopts it; one VM', async () => {
    const fake = await startFakeSecretVm({ apiKey: 'svm', faults: [{ method: 'POST', path: '/api/vm/create', kind: 'hang-after' }] });
    const dir = tempDir();
    const env = serveEnv(dir, { PANTHERS_SECRETVM_API_URL: fake.url, PANTHERS_SECRETVM_API_KEY: 'svm', PANTHERS_SECRETVM_POLL_MS: '50' });
    let srv: ServerProcess | undefined = await spawnCli(['serve'], env);
    try {
      const token = await signInProcess(srv.url, dir, '1211');
      const r = await request(srv.url, 'POST', '/v1/deployments', { token, body: { nft_token_id: '1211', provider: 'secret_vm' } });
      assert.equal(r.status, 202, r.text);
      await waitFor(() => fake.counts.vmsCreated === 1);
      srv.child.kill('SIGKILL');
      await srv.exited;
      const mark = fake.journal.length;
      srv = await spawnCli(['serve'], env);
      const done = await processStatus(srv, '1211', token, ['running', 'failed']);
      assert.equal(done.status, 'running', JSON.stringify(done));
      const [vm] = fake.vms.values();
      assert.equal(done.details.vm_id, vm!.vmId, 'the VM the lost create made was adopted');
      const j = fake.journal;
      assert.ok(indexOf(j, 'GET', /^\/api\/vm\/instances$/, mark) >= 0, 'looked up by name');
      assert.equal(indexOf(j, 'POST', /^\/api\/vm\/create$/, mark), -1, 'not created again');
      assert.equal(fake.liveVms().length, 1);
    } finally {
      await stopProcess(srv);
      await fake.close();
    }
  });

  test('akash: killed mid-bid, the persisted manifest lets the same deployment be leased (no close, no second create)', async () => {
    const fake = await startFakeAkash({ apiKey: 'k', bidsAfterPolls: 1_000_000 });
    const dir = tempDir();
    const SECRET = 'sk-live-MANIFEST-SECRET-4711';
    const env = serveEnv(dir, akashEnv(fake, 'k', { PANTHERS_AKASH_POLL_MS: '50', PANTHERS_AKASH_BID_TIMEOUT_MS: '60000', PANTHERS_OPENAI_API_KEY: SECRET }));
    let srv: ServerProcess | undefined = await spawnCli(['serve'], env);
    try {
      const token = await signInProcess(srv.url, dir, '1212');
      const r = await request(srv.url, 'POST', '/v1/deployments', { token, body: { nft_token_id: '1212', provider: 'akash' } });
      assert.equal(r.status, 202, r.text);
      await waitFor(() => fake.calls('GET', '/v1/bids') >= 2);
      srv.child.kill('SIGKILL');
      await srv.exited;
      const db = new Database(path.join(dir, 'panthers.db'), { readonly: true });
      try {
        const row = db.prepare('SELECT value FROM deployment_secrets WHERE deployment_id = ?').get(r.body.deployment_id) as { value: Buffer } | undefined;
        assert.ok(row, 'the manifest is persisted while waiting for bids');
        assert.ok(!row.value.toString('latin1').includes(SECRET) && !row.value.toString('latin1').includes('PANTHERS_'), 'and encrypted');
      } finally {
        db.close();
      }
      const [dep] = fake.deployments.values();
      fake.opts.bidsAfterPolls = 1;
      srv = await spawnCli(['serve'], env);
      const done = await processStatus(srv, '1212', token, ['running', 'failed']);
      assert.equal(done.status, 'running', JSON.stringify(done));
      assert.equal(done.details.dseq, dep!.dseq, 'the same deployment was leased');
      const j = fake.journal;
      assert.equal(calls(j, 'POST', CREATE_AKASH).length, 1, 'one create');
      assert.equal(calls(j, 'DELETE', ONE_AKASH).length, 0, 'nothing closed');
      const leases = calls(j, 'POST', /^\/v1\/leases$/);
      assert.equal(leases.length, 1, 'one lease');
      assert.equal((leases[0]!.body as { manifest: string }).manifest, dep!.manifest, 'with the manifest the create returned');
      const db2 = new Database(path.join(dir, 'panthers.db'), { readonly: true });
      try {
        assert.equal((db2.prepare('SELECT count(*) AS n FROM deployment_secrets').get() as { n: number }).n, 0, 'the manifest is deleted once leased');
      } finally {
        db2.close();
      }
    } finally {
      await stopProcess(srv);
      await fake.close();
    }
  });
});

describe('a crash of the DeploymentActor', () => {
  test('akash: SQLITE_BUSY mid-deploy crashes the actor; the deploy goes on to running, nothing done twice', async () => {
    const fake = await startFakeAkash({ apiKey: 'k', bidsAfterPolls: 1_000_000 });
    const dir = tempDir();
    const env = serveEnv(dir, akashEnv(fake, 'k', { PANTHERS_AKASH_POLL_MS: '50', PANTHERS_AKASH_BID_TIMEOUT_MS: '60000' }));
    const srv = await spawnCli(['serve'], env);
    try {
      const token = await signInProcess(srv.url, dir, '1220');
      const r = await request(srv.url, 'POST', '/v1/deployments', { token, body: { nft_token_id: '1220', provider: 'akash' } });
      assert.equal(r.status, 202, r.text);
      await waitFor(() => fake.calls('GET', '/v1/bids') >= 2);
      // Another process holds the write lock past the server's busy timeout: the next deployment
      // write (the "bid chosen" step) fails with SQLITE_BUSY, a non-ApiError, and the actor crashes.
      const locker = new Database(path.join(dir, 'panthers.db'));
      locker.exec('BEGIN IMMEDIATE');
      try {
        fake.opts.bidsAfterPolls = 1;
        await waitFor(() => /"actor":"deployment".*actor crashed|actor crashed.*"actor":"deployment"/.test(srv.output()), 15_000, 5);
      } finally {
        locker.exec('COMMIT');
        locker.close();
      }
      const done = await processStatus(srv, '1220', token, ['running', 'failed']);
      assert.equal(done.status, 'running', JSON.stringify(done));
      assert.equal(done.deployment_id, r.body.deployment_id);
      const j = fake.journal;
      assert.equal(calls(j, 'POST', CREATE_AKASH).length, 1, 'one create');
      assert.equal(calls(j, 'POST', /^\/v1\/leases$/).length, 1, 'one lease');
      assert.equal(calls(j, 'DELETE', ONE_AKASH).length, 0, 'nothing closed');
      assert.match(srv.output(), /SQLITE_BUSY|database is locked/);
    } finally {
      await stopProcess(srv);
      await fake.close();
    }
  });
});

test('akash adapter: a new adapter given the saved manifest leases the deployment it was given, without a close or a create', async () => {
  const fake = await startFakeAkash({ apiKey: 'k', bidsAfterPolls: 1_000_000 });
  try {
    const config = loadConfig({ PANTHERS_AKASH_API_URL: fake.url, PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true', PANTHERS_AKASH_API_KEY: 'k', PANTHERS_AKASH_POLL_MS: '15', PANTHERS_AKASH_BID_TIMEOUT_MS: '60000' });
    const logs = captureLogger();
    const spec = contractSpec();
    const abort = new AbortController();
    let secret: string | null = null;
    const ctx = { ...recordingContext(undefined, abort.signal), saveSecret: (v: string | null) => { secret = v; } };
    const pending = createAkashProvider(config, logs.log, { readyTimeoutMs: 2000 }).deploy(spec, ctx).catch((e: unknown) => e);
    await waitFor(() => ctx.saved.length > 0 && secret !== null);
    abort.abort(); // the process "dies" while waiting for bids
    await pending;
    fake.opts.bidsAfterPolls = 1;
    const ctx2 = { ...recordingContext(ctx.saved[0]), resuming: true, secret: secret!, saveSecret: (v: string | null) => { secret = v; } };
    const result = await createAkashProvider(config, logs.log, { readyTimeoutMs: 2000 }).deploy(spec, ctx2);
    assert.equal(result.ref.dseq, ctx.saved[0]!.dseq);
    assert.equal(calls(fake.journal, 'POST', CREATE_AKASH).length, 1);
    assert.equal(calls(fake.journal, 'DELETE', ONE_AKASH).length, 0);
    assert.equal(secret, null, 'the manifest is dropped once leased');
    assert.ok(!logs.text().includes(String(spec.secrets.PANTHERS_OPENAI_API_KEY)));
  } finally {
    await fake.close();
  }
});
