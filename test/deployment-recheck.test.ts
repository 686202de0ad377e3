import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ActorRegistry } from '../actors/registry.js';
import { deploymentActorKind, DEPLOYMENT_ACTOR, type DeploymentView } from '../actors/deployment-actor.js';
import { openSqliteStorage } from '../src/db/storage.js';
import { createLogger } from '../src/logger.js';
import { defaultCharacter } from '../src/agents/character.js';
import { deployFailure } from '../adapters/providers/remote-deploy.js';
import type { ProviderAdapter, ProviderName } from '../src/providers/provider.js';
import { tempDir } from './helpers/server.js';

/**
 * A running deployment is re-checked when its actor starts again (a restart, or in cluster mode
 * the node that took the NFT over). A re-check that does not get through (the agent's ping timed
 * out under load, the provider busy) is not the agent gone: it stays running, with that health,
 * and is not released. Only the provider saying it is gone fails it. Real SQLite file; the
 * provider is a script (what it answers is the point here).
 */
const log = createLogger({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const deployMsg = { type: 'deploy', wallet: '0xabc', provider: 'akash', resources: { cpu: 1, memory_mb: 512, disk_mb: 1024, gpu: 0 }, agent: defaultCharacter('7', 'scripted') };

function actors(dir: string, recheck: () => Promise<never> | undefined) {
  const storage = openSqliteStorage(dir);
  const calls = { deploy: 0, stop: 0 };
  const adapter: ProviderAdapter = {
    name: 'akash',
    missingConfig: () => undefined,
    async deploy(spec, ctx) {
      calls.deploy++;
      if (ctx.ref) await recheck();
      const ref = { dseq: `d-${spec.deploymentId}` };
      await ctx.saveRef(ref);
      return { endpointUrl: 'http://127.0.0.1:1/agent', ref };
    },
    async status() {
      return { state: 'running' };
    },
    async stop() {
      calls.stop++;
    },
    async health() {
      return { ok: false, latency_ms: 1, message: 'still slow' };
    },
  };
  const registry = new ActorRegistry({ log, idleMs: 60_000, queryTimeoutMs: 5000 });
  registry.register(deploymentActorKind({
    repo: storage.deployments, providers: new Map<ProviderName, ProviderAdapter>([['akash', adapter]]), run: (_p, call) => call(),
    publisher: { publish: () => undefined, subscribers: () => 0, subscriptions: 0 }, log, now: Date.now, healthIntervalMs: 60_000, deployTimeoutMs: () => 5000,
    specFor: (d) => ({ deploymentId: d.id, nftTokenId: d.nft_token_id, resources: d.resources, agent: d.agent, env: {}, secrets: {} }),
    secrets: storage.providerSecrets,
  }));
  return { storage, registry, calls };
}

async function until(read: () => Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await read())) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(20);
  }
}

async function recheckedWith(failure: unknown) {
  const dir = tempDir();
  const first = actors(dir, () => undefined);
  await first.registry.ask<DeploymentView>(DEPLOYMENT_ACTOR, '7', deployMsg);
  await until(async () => (await first.storage.deployments.latest('7'))?.status === 'running');
  first.registry.stopAll();
  first.storage.close();
  // The restart: the re-check of the running deployment fails.
  const second = actors(dir, () => Promise.reject(failure));
  second.registry.tell(DEPLOYMENT_ACTOR, '7', { type: 'recover' });
  // Until the re-check's outcome is written: its health (it stays running) or `failed`.
  await until(async () => {
    const d = await second.storage.deployments.latest('7');
    return second.calls.deploy === 1 && (d?.status === 'failed' || /^Re-check/.test(d?.health?.message ?? ''));
  });
  await sleep(100); // a release, if one were started, reaches the provider
  const d = (await second.storage.deployments.latest('7'))!;
  second.registry.stopAll();
  second.storage.close();
  return { d, stops: second.calls.stop };
}

test('a re-check that times out leaves a running deployment running (health not ok), its resource kept', async () => {
  for (const failure of [
    deployFailure('akash', 'not_ready', 'the agent on Akash deployment 1 did not become ready within 5 s'),
    deployFailure('akash', 'timeout', 'Akash GET /v1/leases: no answer within 5000 ms'),
    deployFailure('akash', 'unreachable', 'Akash GET /v1/leases: network error (ECONNRESET)'),
  ]) {
    const { d, stops } = await recheckedWith(failure);
    assert.equal(d.status, 'running', failure.message);
    assert.equal(d.health?.ok, false);
    assert.match(d.health?.message ?? '', /^Re-check after a restart or takeover: /);
    assert.equal(stops, 0, 'nothing released');
  }
});

test('a re-check that finds the deployment closed at the provider fails it', async () => {
  const { d } = await recheckedWith(deployFailure('akash', 'closed', 'the Akash lease for deployment 1 was closed by the provider'));
  assert.equal(d.status, 'failed');
  assert.match(d.error ?? '', /closed by the provider/);
});
