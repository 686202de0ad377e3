import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { createAkashProvider, renderSdl, type AkashProviderOptions } from '../adapters/providers/akash/index.js';
import { secretScrubber } from '../adapters/providers/remote-deploy.js';
import { guardProviderCalls } from '../adapters/providers/provider-guard.js';
import { startFakeAkash, type FakeAkash, type FakeAkashOptions } from './fakes/akash-api.js';
import {
  failingDeploy,
  assertNoSecret, captureLogger, contractSpec, providerContract, recordingContext, CONTRACT_SECRET,
} from './helpers/provider-contract.js';

const KEY = 'test-akash-key';

interface Harness {
  fake: FakeAkash;
  adapter: ReturnType<typeof createAkashProvider>;
  logs: ReturnType<typeof captureLogger>;
  config: ReturnType<typeof loadConfig>;
}

async function setup(fakeOpts: FakeAkashOptions = {}, env: Record<string, string> = {}, opts: AkashProviderOptions = {}): Promise<Harness> {
  const fake = await startFakeAkash(fakeOpts);
  const logs = captureLogger();
  const config = loadConfig({
    PANTHERS_AKASH_API_URL: fake.url, PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true',
    PANTHERS_AKASH_API_KEY: KEY,
    PANTHERS_AKASH_POLL_MS: '15',
    PANTHERS_AKASH_BID_TIMEOUT_MS: '800',
    PANTHERS_PROVIDER_TIMEOUT_MS: '400',
    ...env,
  });
  const adapter = createAkashProvider(config, logs.log, { readyTimeoutMs: 800, retry: { baseDelayMs: 20, maxDelayMs: 80 }, ...opts });
  return { fake, adapter, logs, config };
}

let contractHarness: Harness | undefined;
providerContract('akash', async () => {
  contractHarness = await setup();
  return contractHarness.adapter;
}, { cleanup: () => contractHarness?.fake.close() });

test('akash: the contract run logged no secret and made exactly one deployment and one lease', () => {
  const h = contractHarness!;
  assertNoSecret({ s: CONTRACT_SECRET }, h.logs.text());
  assert.equal(h.fake.counts.deploymentsCreated, 1, JSON.stringify(h.fake.journal.map((j) => [j.method, j.path, j.status])));
  assert.equal(h.fake.counts.leasesCreated, 1);
  assert.equal(h.fake.activeDeployments().length, 0, 'stopped at the end');
});

test('akash: the SDL is YAML that reads back with the resources, env, marker and price cap', async () => {
  const require = createRequire(import.meta.url);
  const yaml = require('js-yaml') as { load(s: string): any };
  const config = loadConfig({ PANTHERS_AKASH_DENOM: 'uact', PANTHERS_AKASH_PRICE_CAP: '2500', PANTHERS_AGENT_IMAGE: 'ghcr.io/x/agent:1' });
  const spec = contractSpec({
    resources: { cpu: 1.5, memory_mb: 2048, disk_mb: 4096, gpu: 1 },
    env: { PANTHERS_MODEL: 'openai', TRICKY: 'a: b # not a comment\n- "quoted" \u2028 end', PANTHERS_ORCHESTRATOR_JWKS_URL: 'https://o.test/.well-known/jwks.json' },
  });
  const doc = yaml.load(renderSdl(spec, config.akash));
  assert.equal(doc.version, '2.0');
  const svc = doc.services.agent;
  assert.equal(svc.image, 'ghcr.io/x/agent:1');
  assert.ok(svc.env.includes('PORT=8080'));
  assert.ok(svc.env.includes('PANTHERS_AGENT_NFT=4242'));
  assert.ok(svc.env.includes(`PANTHERS_DEPLOYMENT_ID=${spec.deploymentId}`));
  assert.ok(svc.env.includes(`TRICKY=${spec.env.TRICKY}`), 'a tricky value survives verbatim');
  assert.ok(svc.env.includes(`PANTHERS_OPENAI_API_KEY=${CONTRACT_SECRET}`), 'on Akash the secret travels in the SDL env');
  assert.deepEqual(svc.expose, [{ port: 8080, as: 80, to: [{ global: true }] }]);
  assert.ok(svc.env.includes('PANTHERS_INGRESS=http'), 'the agent knows it sits behind the HTTP ingress');
  assert.ok(svc.env.includes('PANTHERS_DATA_DIR=/app/data'));
  assert.deepEqual(svc.params, { storage: { data: { mount: '/app/data', readOnly: false } } }, 'the data dir is the persistent volume');
  const res = doc.profiles.compute.agent.resources;
  assert.deepEqual(res.cpu, { units: 1.5 });
  assert.deepEqual(res.memory, { size: '2048Mi' });
  assert.deepEqual(res.storage, [{ size: '512Mi' }, { name: 'data', size: '4096Mi', attributes: { persistent: true, class: 'beta3' } }]);
  assert.deepEqual(res.gpu, { units: 1, attributes: { vendor: { nvidia: null } } });
  assert.deepEqual(doc.profiles.placement.dcloud.pricing.agent, { denom: 'uact', amount: 2500 });
  assert.deepEqual(doc.deployment.agent.dcloud, { profile: 'agent', count: 1 });
});

test('akash: waits for late bids, leases the cheapest open bid under the cap, serves /health', async () => {
  const h = await setup({
    bidsAfterPolls: 3,
    bids: [
      { provider: 'akash1provA', amount: '5' },
      { provider: 'akash1provB', amount: '3.5' },
      { provider: 'akash1provOtherDenom', amount: '1', denom: 'ibc/abc' },
      { provider: 'akash1provTooDear', amount: '99999' },
    ],
  });
  try {
    const ctx = recordingContext();
    const spec = contractSpec();
    const result = await h.adapter.deploy(spec, ctx);
    const [dep] = h.fake.deployments.values();
    assert.ok(dep!.bidPolls >= 3, 'polled until the bids came');
    assert.equal(dep!.leases.length, 1);
    assert.equal(dep!.leases[0]!.provider, 'akash1provB');
    assert.deepEqual(result.ref, { dseq: dep!.dseq, gseq: 1, oseq: 1, provider: 'akash1provB' });
    assert.deepEqual(ctx.saved[0], { dseq: dep!.dseq }, 'the dseq is saved as soon as the deployment exists');
    assert.equal(result.endpointUrl, h.fake.url, 'a URI without scheme gets http://');
    assert.equal(result.details?.price, '3.5 uakt');
    assert.ok(ctx.steps.some((s) => /akash1provB/.test(s.message)));
    assert.ok(dep!.sdl.includes(`PANTHERS_OPENAI_API_KEY=${CONTRACT_SECRET}`), 'the provider got the secret');
    assertNoSecret(spec.secrets, h.logs.text(), ctx.steps, ctx.saved, result);
    const health = await h.adapter.health(result.endpointUrl, result.ref);
    assert.equal(health.ok, true);
    assert.ok(health.latency_ms >= 0);
  } finally {
    await h.fake.close();
  }
});

test('akash: no bids within the bid timeout fails clearly and closes the deployment', async () => {
  const h = await setup({ noBids: true }, { PANTHERS_AKASH_BID_TIMEOUT_MS: '300' });
  try {
    const started = Date.now();
    const err = await failingDeploy(h);
    assert.equal(err.details.reason, 'no_bids');
    assert.match(err.message, /no Akash provider bid/);
    assert.ok(Date.now() - started < 3000, 'bounded by the bid timeout');
    assert.equal(h.fake.activeDeployments().length, 0);
  } finally {
    await h.fake.close();
  }
});

test('akash: bids only above the price cap end as no usable bid, naming the cap', async () => {
  const h = await setup({ bids: [{ provider: 'akash1dear', amount: '20000' }] }, { PANTHERS_AKASH_BID_TIMEOUT_MS: '200' });
  try {
    const err = await failingDeploy(h);
    assert.equal(err.details.reason, 'no_bids');
    assert.match(err.message, /price cap of 10000 uakt.*cheapest was 20000/);
  } finally {
    await h.fake.close();
  }
});

test('akash: a bid lost when leasing fails clearly and leaves no lease', async () => {
  const h = await setup({ loseBid: true });
  try {
    const err = await failingDeploy(h);
    assert.equal(err.details.reason, 'bid_lost');
    assert.match(err.message, /bid of Akash provider akash1providercheap was lost/);
    assert.equal(h.fake.counts.leasesCreated, 0);
    assert.equal(h.fake.activeDeployments().length, 0);
  } finally {
    await h.fake.close();
  }
});

test('akash: a lease lost as the bids come in (a paused node resumed): the refused lease closes nothing', async () => {
  const h = await setup({ bidsAfterPolls: 2 });
  try {
    // Cluster mode's guard (deployment-actor guardCalls): from the moment a bid is chosen this node
    // no longer holds the NFT's lease, and the deploy is not aborted yet (its shard not yet dropped).
    const ac = new AbortController();
    let lost = false;
    guardProviderCalls(ac.signal, () => {
      if (lost) throw new Error('this node no longer holds the lease of NFT 4242');
    });
    const base = recordingContext(undefined, ac.signal);
    const ctx = { ...base, progress: (p: number, m: string) => {
      base.progress(p, m);
      if (p === 30) lost = true;
    } };
    await assert.rejects(h.adapter.deploy(contractSpec(), ctx), (e: any) => e?.details?.reason === 'provider_error' && /no longer holds the lease/.test(e.message));
    assert.equal(h.fake.counts.leasesCreated, 0);
    assert.equal(h.fake.counts.closes, 0, 'a refused call is no withdrawn bid, and the close is refused too');
    assert.equal(h.fake.activeDeployments().length, 1, 'left to the next owner: it resumes the saved dseq (or finds it by marker)');
  } finally {
    await h.fake.close();
  }
});

test('akash: insufficient funds at lease time and in the lease state both fail clearly', async () => {
  for (const where of ['lease', 'status'] as const) {
    const h = await setup({ insufficientFunds: where });
    try {
      const err = await failingDeploy(h);
      assert.equal(err.details.reason, 'insufficient_funds', where);
      assert.match(err.message, /insufficient funds/i);
      assert.equal(h.fake.activeDeployments().length, 0, 'closed');
    } finally {
      await h.fake.close();
    }
  }
});

test('akash: 429 with Retry-After is waited out and retried', async () => {
  const h = await setup({ faults: [{ method: 'GET', path: '/v1/bids', kind: '429', retryAfterSec: 1 }] });
  try {
    const result = await h.adapter.deploy(contractSpec(), recordingContext());
    assert.ok(result.endpointUrl);
    const bids = h.fake.journal.filter((j) => j.path === '/v1/bids');
    assert.equal(bids[0]!.status, 429);
    assert.equal(bids[1]!.status, 200);
    assert.ok(bids[1]!.at - bids[0]!.at >= 900, `waited ${bids[1]!.at - bids[0]!.at} ms, Retry-After said 1 s`);
  } finally {
    await h.fake.close();
  }
});

test('akash: 5xx answers and dropped connections on reads are retried with backoff', async () => {
  const h = await setup({
    faults: [
      { method: 'GET', path: '/v1/bids', kind: '500', times: 2 },
      { method: 'GET', path: /^\/v1\/deployments\/\d+$/, kind: 'reset-after' },
    ],
  });
  try {
    const result = await h.adapter.deploy(contractSpec(), recordingContext());
    assert.ok(result.endpointUrl);
    const statuses = h.fake.journal.filter((j) => j.path === '/v1/bids').map((j) => j.status);
    assert.deepEqual(statuses.slice(0, 3), [500, 500, 200]);
    assert.ok(h.fake.journal.some((j) => j.status === 'reset'));
    assert.ok(h.logs.lines.some((l) => l.includes('retrying')), 'retries are logged');
  } finally {
    await h.fake.close();
  }
});

test('akash: a 500 on create after the create happened is reconciled: one lease, one open deployment', async () => {
  const h = await setup({ faults: [{ method: 'POST', path: '/v1/deployments', kind: '500-after' }] });
  try {
    const spec = contractSpec();
    const ctx = recordingContext();
    const result = await h.adapter.deploy(spec, ctx);
    assert.equal(h.fake.counts.leasesCreated, 1);
    const active = h.fake.activeDeployments();
    assert.equal(active.length, 1, 'exactly one open deployment');
    assert.equal(active[0]!.dseq, result.ref.dseq);
    assert.ok(h.fake.calls('GET', '/v1/deployments') >= 2, 'listed and read back the deployments');
    const orphan = [...h.fake.deployments.values()].find((d) => d.dseq !== result.ref.dseq)!;
    assert.equal(orphan.state, 'closed', 'the deployment whose answer was lost was found by its marker and closed');
    assert.ok(!ctx.saved.some((r) => r.dseq === orphan.dseq), 'never adopted without its manifest');
    assertNoSecret(spec.secrets, h.logs.text(), ctx.steps, ctx.saved, result);
  } finally {
    await h.fake.close();
  }
});

test('akash: a create that hangs times out; nothing was made, so it is retried once', async () => {
  const h = await setup({ faults: [{ method: 'POST', path: '/v1/deployments', kind: 'hang' }] });
  try {
    const started = Date.now();
    const result = await h.adapter.deploy(contractSpec(), recordingContext());
    assert.ok(Date.now() - started >= 400, 'waited for the call timeout');
    assert.equal(h.fake.counts.deploymentsCreated, 1, JSON.stringify(h.fake.journal.map((j) => [j.method, j.path, j.status])));
    assert.equal(h.fake.counts.leasesCreated, 1);
    assert.equal(h.fake.activeDeployments()[0]!.dseq, result.ref.dseq);
  } finally {
    await h.fake.close();
  }
});

test('akash: a create whose answer never comes but which happened leaves one lease', async () => {
  const h = await setup({ faults: [{ method: 'POST', path: '/v1/deployments', kind: 'hang-after' }] });
  try {
    const result = await h.adapter.deploy(contractSpec(), recordingContext());
    assert.equal(h.fake.counts.leasesCreated, 1);
    assert.equal(h.fake.activeDeployments().length, 1);
    assert.equal(h.fake.activeDeployments()[0]!.dseq, result.ref.dseq);
  } finally {
    await h.fake.close();
  }
});

test('akash: a lease answer lost after the lease was made is not repeated', async () => {
  const h = await setup({ faults: [{ method: 'POST', path: '/v1/leases', kind: 'reset-after' }] });
  try {
    const result = await h.adapter.deploy(contractSpec(), recordingContext());
    assert.equal(h.fake.counts.leasesCreated, 1);
    assert.equal(h.fake.calls('POST', '/v1/leases'), 1);
    assert.ok(result.endpointUrl);
  } finally {
    await h.fake.close();
  }
});

test('akash: a status call that hangs is timed out and retried', async () => {
  const h = await setup({ faults: [{ method: 'GET', path: /^\/v1\/deployments\/\d+$/, kind: 'hang' }] });
  try {
    const result = await h.adapter.deploy(contractSpec(), recordingContext());
    assert.ok(result.endpointUrl);
    assert.ok(h.fake.journal.some((j) => j.status === 'hang'));
  } finally {
    await h.fake.close();
  }
});

test('akash: a provider that never answers ends in TIMEOUT after bounded retries', async () => {
  const h = await setup({ faults: [{ method: 'GET', path: '/v1/bids', kind: 'hang', times: 100 }] }, { PANTHERS_PROVIDER_TIMEOUT_MS: '150' }, { retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 } });
  try {
    const err = await failingDeploy(h);
    assert.equal(err.code, 'TIMEOUT');
    assert.equal(err.details.reason, 'timeout');
    assert.match(err.message, /no answer within 150 ms/);
    assert.equal(h.fake.calls('GET', '/v1/bids'), 3);
  } finally {
    await h.fake.close();
  }
});

test('akash: an agent that never becomes ready fails within the ready timeout and is closed', async () => {
  const h = await setup({ neverReady: true }, {}, { readyTimeoutMs: 300 });
  try {
    const started = Date.now();
    const err = await failingDeploy(h);
    assert.equal(err.details.reason, 'not_ready');
    assert.match(err.message, /did not become ready/);
    assert.ok(Date.now() - started < 3000);
    assert.equal(h.fake.activeDeployments().length, 0);
  } finally {
    await h.fake.close();
  }
});

test('akash: resuming after a restart before the lease replaces the unleasable deployment', async () => {
  const h = await setup({ bidsAfterPolls: 1000 }, { PANTHERS_AKASH_BID_TIMEOUT_MS: '60000' });
  try {
    const spec = contractSpec();
    const abort = new AbortController();
    const ctx = recordingContext(undefined, abort.signal);
    const pending = h.adapter.deploy(spec, ctx).catch((e: unknown) => e);
    for (let i = 0; i < 200 && ctx.saved.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    abort.abort(); // the process "dies" while waiting for bids
    await pending;
    const oldDseq = ctx.saved[0]!.dseq;
    h.fake.opts.bidsAfterPolls = 1;
    // A new adapter: the manifest (kept in memory only, it holds the secrets) is gone.
    const restarted = createAkashProvider(h.config, h.logs.log, { readyTimeoutMs: 800 });
    const ctx2 = recordingContext(ctx.saved[0]);
    const result = await restarted.deploy(spec, ctx2);
    assert.notEqual(result.ref.dseq, oldDseq);
    assert.equal(h.fake.deployments.get(String(oldDseq))!.state, 'closed');
    assert.equal(h.fake.activeDeployments().length, 1);
    assert.equal(h.fake.counts.leasesCreated, 1);
  } finally {
    await h.fake.close();
  }
});

test('akash: status maps closed, missing and unleased deployments', async () => {
  const h = await setup({ noBids: true }, { PANTHERS_AKASH_BID_TIMEOUT_MS: '100' });
  try {
    assert.equal((await h.adapter.status({})).state, 'unknown');
    assert.equal((await h.adapter.status({ dseq: '999' })).state, 'stopped');
    await failingDeploy(h);
    const [dep] = h.fake.deployments.values();
    assert.equal((await h.adapter.status({ dseq: dep!.dseq })).state, 'stopped');
    dep!.state = 'active';
    assert.equal((await h.adapter.status({ dseq: dep!.dseq })).state, 'deploying');
  } finally {
    await h.fake.close();
  }
});

test('akash: without an API key it names PANTHERS_AKASH_API_KEY; with a wrong one it says so', async () => {
  const h = await setup({}, { PANTHERS_AKASH_API_KEY: '' });
  try {
    assert.match(h.adapter.missingConfig() ?? '', /PANTHERS_AKASH_API_KEY/);
    const err = await failingDeploy(h);
    assert.match(err.message, /PANTHERS_AKASH_API_KEY/);
    assert.equal(h.fake.journal.length, 0, 'no call made');
  } finally {
    await h.fake.close();
  }
  const wrong = await setup({}, { PANTHERS_AKASH_API_KEY: 'wrong-key-123' });
  try {
    const err = await failingDeploy(wrong);
    assert.equal(err.details.reason, 'unauthorized');
    assert.match(err.message, /rejected the API key/);
    assert.ok(!err.message.includes('wrong-key-123'));
    assert.ok(!wrong.logs.text().includes('wrong-key-123'));
  } finally {
    await wrong.fake.close();
  }
});

test('akash: an error that quotes the SDL back has the secret scrubbed', async () => {
  const h = await setup({ echoSdlInError: true });
  try {
    const err = await failingDeploy(h);
    assert.equal(err.details.reason, 'rejected');
    assert.match(err.message, /SDL rejected/);
    assert.ok(err.message.length < 400, 'kept short');
  } finally {
    await h.fake.close();
  }
});

test('secret scrubber: whole secrets anywhere and a secret cut at the end of a message', () => {
  const scrub = secretScrubber({ A: 'sk-abcdef123456', B: 'tok-999999' });
  assert.equal(scrub('key sk-abcdef123456 and tok-999999.'), 'key [redacted] and [redacted].');
  assert.equal(scrub('env PANTHERS_OPENAI_API_KEY=sk-abcd'), 'env PANTHERS_OPENAI_API_KEY=[redacted]');
  assert.equal(scrub('nothing here'), 'nothing here');
});

test('akash: health of an agent that does not answer is not ok, within the timeout', async () => {
  const h = await setup({ faults: [{ method: 'GET', path: '/health', kind: 'hang' }] }, { PANTHERS_PROVIDER_TIMEOUT_MS: '200' });
  try {
    const report = await h.adapter.health(h.fake.url, {});
    assert.equal(report.ok, false);
    assert.match(report.message, /no answer within 200 ms/);
    assert.ok(report.latency_ms >= 150 && report.latency_ms < 2000);
    const down = await h.adapter.health('http://127.0.0.1:1', {});
    assert.equal(down.ok, false);
    assert.match(down.message, /unreachable/);
  } finally {
    await h.fake.close();
  }
});
