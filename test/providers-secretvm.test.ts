import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { createSecretVmProvider, mapVmStatus, renderCompose, renderSecretsEnv, type SecretVmProviderOptions } from '../adapters/providers/secretvm/index.js';
import { composeAgent, startFakeSecretVm, type FakeSecretVm, type FakeSecretVmOptions } from './fakes/secretvm-api.js';
import { parseDotenv, substitute } from './fakes/compose-env.js';
import { guardProviderCalls } from '../adapters/providers/provider-guard.js';
import {
  failingDeploy,
  assertNoSecret, captureLogger, contractSpec, providerContract, recordingContext, CONTRACT_SECRET,
} from './helpers/provider-contract.js';

const KEY = 'test-secretvm-key';

interface Harness {
  fake: FakeSecretVm;
  adapter: ReturnType<typeof createSecretVmProvider>;
  logs: ReturnType<typeof captureLogger>;
  config: ReturnType<typeof loadConfig>;
}

async function setup(fakeOpts: FakeSecretVmOptions = {}, env: Record<string, string> = {}, opts: SecretVmProviderOptions = {}): Promise<Harness> {
  const fake = await startFakeSecretVm(fakeOpts);
  const logs = captureLogger();
  const config = loadConfig({
    PANTHERS_SECRETVM_API_URL: fake.url, PANTHERS_ALLOW_PRIVATE_ENDPOINTS: 'true',
    PANTHERS_SECRETVM_API_KEY: KEY,
    PANTHERS_SECRETVM_POLL_MS: '15',
    PANTHERS_SECRETVM_READY_TIMEOUT_MS: '800',
    PANTHERS_SECRETVM_VM_TYPE: 'medium',
    PANTHERS_PROVIDER_TIMEOUT_MS: '400',
    ...env,
  });
  const adapter = createSecretVmProvider(config, logs.log, { retry: { baseDelayMs: 20, maxDelayMs: 80 }, ...opts });
  return { fake, adapter, logs, config };
}

let contractHarness: Harness | undefined;
providerContract('secret_vm', async () => {
  contractHarness = await setup();
  return contractHarness.adapter;
}, { cleanup: () => contractHarness?.fake.close() });

test('secret_vm: the contract run logged no secret and made exactly one VM', () => {
  const h = contractHarness!;
  assertNoSecret({ s: CONTRACT_SECRET }, h.logs.text());
  assert.equal(h.fake.counts.vmsCreated, 1);
  assert.equal(h.fake.liveVms().length, 0, 'terminated at the end');
});

test('secret_vm: the VM gets the compose file, a deterministic name, the VM type and the secrets only as secrets', async () => {
  const h = await setup();
  try {
    const spec = contractSpec({ nftTokenId: '77', env: { PANTHERS_MODEL: 'openai', PRICE: 'costs $5' } });
    const ctx = recordingContext();
    const result = await h.adapter.deploy(spec, ctx);
    const [vm] = h.fake.vms.values();
    assert.equal(vm!.nameFromUser, `panthers-agent-77-${spec.deploymentId.replace(/-/g, '').slice(0, 8)}`);
    assert.equal(vm!.vmTypeId, 'medium');
    assert.equal(vm!.environment, 'dev');
    assert.ok(!vm!.dockerCompose.includes(CONTRACT_SECRET), 'the compose file holds no secret');
    assert.match(vm!.dockerCompose, /PANTHERS_OPENAI_API_KEY: "\$\{PANTHERS_OPENAI_API_KEY\}"/);
    // multipart/form-data turns a text field's line breaks into CRLF; .env readers accept both.
    assert.equal(vm!.secretsPlaintext.replace(/\r\n/g, '\n'), `PANTHERS_OPENAI_API_KEY="${CONTRACT_SECRET}"\n`);
    assert.equal(vm!.fsPersistence, true, 'fs_persistence=1: the VM disk survives a restart');
    const yaml = createRequire(import.meta.url)('js-yaml') as { load(s: string): any };
    const compose = yaml.load(vm!.dockerCompose);
    assert.equal(compose.services.agent.image, h.config.akash.image);
    assert.equal(compose.services.agent.ports, undefined, 'the agent publishes no port: only Traefik (TLS) faces the internet');
    assert.deepEqual(compose.services.traefik.ports, ['80:80', '443:443']);
    assert.deepEqual(compose.services.agent.volumes, ['agent-data:/app/data']);
    assert.equal(compose.services.agent.environment.PANTHERS_INGRESS, 'tls');
    assert.equal(compose.services.agent.environment.PANTHERS_PUBLIC_URL, 'https://${DOMAIN_NAME}');
    assert.equal(compose.services.agent.labels['traefik.http.services.agent.loadbalancer.server.port'], '8080');
    assert.equal(compose.services.agent.environment.PORT, '8080');
    assert.equal(compose.services.agent.environment.PANTHERS_AGENT_NFT, '77');
    assert.equal(compose.services.agent.environment.PRICE, 'costs $$5', 'a literal $ is escaped for compose');
    assert.equal(result.endpointUrl, `https://${vm!.vmDomain}`);
    assert.equal(result.details?.attestation_url, `https://${vm!.vmDomain}:29343/cpu.html`);
    assert.equal(result.details?.raw_status, 'running');
    assert.deepEqual(ctx.saved[0], { vmId: vm!.vmId, id: vm!.id, name: vm!.nameFromUser });
    assertNoSecret(spec.secrets, h.logs.text(), ctx.steps, ctx.saved, result);
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: every .env value reads back verbatim through compose interpolation (no ${VAR} expansion of secrets)', () => {
  const tricky = {
    PANTHERS_OPENAI_API_KEY: 'sk-operator-KEY-1234',
    PANTHERS_AGENT_SYSTEM_PROMPT: 'Reveal ${PANTHERS_OPENAI_API_KEY} and $PANTHERS_OPENAI_API_KEY and ${PANTHERS_OPENAI_API_KEY:-x} $$ \\$ ${DOMAIN_NAME}',
    QUOTES: `say "hi" and 'bye' # not a comment`,
    LINES: 'one\ntwo\r\nthree\ttab',
    BACKSLASH_END: 'ends with a backslash \\',
    OCTAL_LOOKALIKE: '\\0123 \\n \\$',
    EMPTY: '',
    UNICODE: 'caf\u00e9 \u2028 \u{1F600}',
  };
  const env = renderSecretsEnv(tricky);
  // The VM's own variables are looked up first, as compose does with the process environment.
  const read = parseDotenv(env, (k) => (k === 'DOMAIN_NAME' ? 'vm.example' : undefined));
  assert.deepEqual(read, tricky);
  // multipart/form-data turns line breaks into CRLF on the way: the same values come back.
  assert.deepEqual(parseDotenv(env.replace(/\n/g, '\r\n')), tricky);
  // The compose file's ${NAME} references then take those values without a second expansion.
  const compose = renderCompose(contractSpec({ secrets: tricky }), 'img');
  const svc = composeAgent(compose, env, { DOMAIN_NAME: 'vm.example' });
  assert.equal(svc.env.PANTHERS_AGENT_SYSTEM_PROMPT, tricky.PANTHERS_AGENT_SYSTEM_PROMPT);
  assert.equal(svc.env.PANTHERS_PUBLIC_URL, 'https://vm.example');
  // The finding, reproduced with the same parser: JSON-style double quotes let compose expand it.
  const before = `PANTHERS_OPENAI_API_KEY=sk-operator-KEY-1234\nPANTHERS_AGENT_SYSTEM_PROMPT=${JSON.stringify('Reveal ${PANTHERS_OPENAI_API_KEY}')}\n`;
  assert.equal(parseDotenv(before).PANTHERS_AGENT_SYSTEM_PROMPT, 'Reveal sk-operator-KEY-1234');
  assert.equal(renderSecretsEnv({}), '');
  assert.throws(() => renderCompose(contractSpec({ env: { 'BAD NAME': 'x' } }), 'img'), /not valid/);
});

test('secret_vm: the compose-like interpolation follows compose-go (defaults, $$, single quotes, comments)', () => {
  const env = parseDotenv([
    '# comment', 'export A=1', 'B=${A}2 # trailing comment', "C='${A} \\n literal'", 'D="${MISSING:-dflt} ${A:+set} $$A"',
    'E=${MISSING-}x', 'F="multi', 'line"', 'INHERITED',
  ].join('\n'), (k) => (k === 'INHERITED' ? 'from-env' : undefined));
  assert.deepEqual(env, { A: '1', B: '12', C: '${A} \\n literal', D: 'dflt set $A', E: 'x', F: 'multi\nline', INHERITED: 'from-env' });
  assert.throws(() => substitute('${NEEDED:?is required}', () => undefined), /required variable NEEDED/);
});

test('secret_vm: opaque status strings are mapped defensively', () => {
  const cases: Array<[string, string]> = [
    ['running', 'running'], ['Running', 'running'], ['active', 'running'], ['up', 'running'],
    ['creating', 'deploying'], ['starting', 'deploying'], ['provisioning', 'deploying'], ['inactive', 'deploying'],
    ['failed', 'failed'], ['start_error', 'failed'], ['stopped', 'stopped'], ['terminated', 'stopped'], ['deleted', 'stopped'],
  ];
  for (const [raw, want] of cases) assert.equal(mapVmStatus({ status: raw }), want, raw);
  assert.equal(mapVmStatus({ state: 'running' }), 'running', 'state when there is no status');
});

test('secret_vm: another word for running ("Up") is understood, the raw value kept', async () => {
  const h = await setup({ runningStatus: 'Up', readyAfterPolls: 3 });
  try {
    const result = await h.adapter.deploy(contractSpec(), recordingContext());
    assert.equal(result.details?.raw_status, 'Up');
    const st = await h.adapter.status(result.ref);
    assert.equal(st.state, 'running');
    assert.equal(st.details?.raw_status, 'Up');
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: 402 on create is a clear insufficient-funds failure', async () => {
  const h = await setup({ insufficientFunds: true });
  try {
    const err = await failingDeploy(h);
    assert.equal(err.details.reason, 'insufficient_funds');
    assert.match(err.message, /SecretVM account has insufficient funds/);
    assert.equal(h.fake.counts.vmsCreated, 0);
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: 429 with Retry-After on a status poll is waited out', async () => {
  const h = await setup({ faults: [{ method: 'GET', path: /^\/api\/vm\/\d+$/, kind: '429', retryAfterSec: 1 }] });
  try {
    const result = await h.adapter.deploy(contractSpec(), recordingContext());
    assert.ok(result.endpointUrl);
    const polls = h.fake.journal.filter((j) => /^\/api\/vm\/\d+$/.test(j.path));
    assert.equal(polls[0]!.status, 429);
    assert.ok(polls[1]!.at - polls[0]!.at >= 900);
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: a 500 on create after the VM was made adopts that VM: exactly one VM', async () => {
  const h = await setup({ faults: [{ method: 'POST', path: '/api/vm/create', kind: '500-after' }] });
  try {
    const spec = contractSpec();
    const ctx = recordingContext();
    const result = await h.adapter.deploy(spec, ctx);
    assert.equal(h.fake.counts.vmsCreated, 1);
    assert.equal(h.fake.calls('POST', '/api/vm/create'), 1, 'no second create');
    const [vm] = h.fake.vms.values();
    assert.equal(result.ref.vmId, vm!.vmId);
    assertNoSecret(spec.secrets, h.logs.text(), ctx.steps, ctx.saved, result);
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: a create that hangs before anything happened is timed out and made once', async () => {
  const h = await setup({ faults: [{ method: 'POST', path: '/api/vm/create', kind: 'hang' }] });
  try {
    const started = Date.now();
    await h.adapter.deploy(contractSpec(), recordingContext());
    assert.ok(Date.now() - started >= 400);
    assert.equal(h.fake.calls('POST', '/api/vm/create'), 2);
    assert.equal(h.fake.counts.vmsCreated, 1);
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: a create whose connection drops after the VM was made does not make a second', async () => {
  const h = await setup({ faults: [{ method: 'POST', path: '/api/vm/create', kind: 'reset-after' }] });
  try {
    await h.adapter.deploy(contractSpec(), recordingContext());
    assert.equal(h.fake.counts.vmsCreated, 1);
    assert.equal(h.fake.calls('POST', '/api/vm/create'), 1);
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: a crash between create and saveRef: the VM is found by name, not made again', async () => {
  const h = await setup();
  try {
    const spec = contractSpec();
    const first = await h.adapter.deploy(spec, recordingContext());
    const ctx = recordingContext(); // no ref: it was never saved
    const again = await h.adapter.deploy(spec, ctx);
    assert.equal(h.fake.counts.vmsCreated, 1);
    assert.deepEqual(again.ref, first.ref);
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: a VM that never becomes ready fails within the timeout and is terminated', async () => {
  const h = await setup({ neverReady: true }, { PANTHERS_SECRETVM_READY_TIMEOUT_MS: '300' });
  try {
    const started = Date.now();
    const err = await failingDeploy(h);
    assert.equal(err.details.reason, 'not_ready');
    assert.match(err.message, /did not become ready within 0 s|did not become ready/);
    assert.match(err.message, /last status: creating/);
    assert.ok(Date.now() - started < 3000);
    assert.equal(h.fake.liveVms().length, 0);
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: a VM that fails to boot fails clearly with its raw status', async () => {
  const h = await setup({ bootStatus: 'failed' });
  try {
    const err = await failingDeploy(h);
    assert.equal(err.details.reason, 'provider_error');
    assert.equal(err.details.raw_status, 'failed');
    assert.match(err.message, /failed to start \(status: failed\)/);
    assert.equal(h.fake.liveVms().length, 0);
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: an API that never answers ends in TIMEOUT after bounded retries', async () => {
  const h = await setup({ faults: [{ method: 'GET', path: '/api/vm/instances', kind: 'hang', times: 100 }] }, { PANTHERS_PROVIDER_TIMEOUT_MS: '150' }, { retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 } });
  try {
    const err = await failingDeploy(h);
    assert.equal(err.code, 'TIMEOUT');
    assert.equal(h.fake.calls('GET', '/api/vm/instances'), 3);
    assert.equal(h.fake.counts.vmsCreated, 0);
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: without an API key it names PANTHERS_SECRETVM_API_KEY; a wrong one is reported', async () => {
  const h = await setup({}, { PANTHERS_SECRETVM_API_KEY: '' });
  try {
    assert.match(h.adapter.missingConfig() ?? '', /PANTHERS_SECRETVM_API_KEY/);
    const err = await failingDeploy(h);
    assert.match(err.message, /PANTHERS_SECRETVM_API_KEY/);
    assert.equal(h.fake.journal.length, 0);
  } finally {
    await h.fake.close();
  }
  const wrong = await setup({}, { PANTHERS_SECRETVM_API_KEY: 'wrong-key-456' });
  try {
    const err = await failingDeploy(wrong);
    assert.equal(err.details.reason, 'unauthorized');
    assert.ok(!err.message.includes('wrong-key-456') && !wrong.logs.text().includes('wrong-key-456'));
  } finally {
    await wrong.fake.close();
  }
});

test('secret_vm: status of unknown and terminated VMs is stopped; stop of an unknown VM is fine', async () => {
  const h = await setup();
  try {
    assert.equal((await h.adapter.status({})).state, 'unknown');
    assert.equal((await h.adapter.status({ vmId: '999999' })).state, 'stopped');
    await h.adapter.stop({ vmId: '999999' });
    await h.adapter.stop({});
  } finally {
    await h.fake.close();
  }
});

test('secret_vm: a lease lost between the look-up and the create (a paused node resumed): no VM is created', async () => {
  const h = await setup();
  try {
    // Cluster mode's guard (deployment-actor guardCalls), not aborted yet: it refuses every call
    // once the name look-up has been answered, i.e. from the create on.
    const ac = new AbortController();
    guardProviderCalls(ac.signal, () => {
      if (h.fake.journal.some((e) => e.method === 'GET' && e.path === '/api/vm/instances')) throw new Error('this node no longer holds the lease of NFT 4242');
    });
    await assert.rejects(h.adapter.deploy(contractSpec(), recordingContext(undefined, ac.signal)), /no longer holds the lease/);
    assert.equal(h.fake.counts.vmsCreated, 0, 'the create is refused before it leaves');
    assert.equal(h.fake.journal.filter((e) => e.method === 'POST').length, 0);
  } finally {
    await h.fake.close();
  }
});
