import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreEngine } from '../helpers/state-engines.js';
import type { Storage } from '../../src/db/storage.js';

/** AgentGrantStore: grants keep their latest expiry, revoked holders are listed, cut-offs only rise. */
export function agentGrantContract(open: () => Promise<StoreEngine>): void {
  let engine: StoreEngine;
  let a: Storage;
  let b: Storage;
  before(async () => {
    engine = await open();
    a = engine.node();
    b = engine.node();
  });
  after(() => engine.close());

  test('grants, holders, revoked sessions, prune', async () => {
    await a.sessions.open({ id: 'g1', wallet: '0xOne', nft_token_id: '7', refresh_hash: 'gh1', created_at: 1, expires_at: 1e12 });
    await a.sessions.open({ id: 'g2', wallet: '0xTwo', nft_token_id: '8', refresh_hash: 'gh2', created_at: 1, expires_at: 1e12 });
    await a.agentGrants.grant('7', 'g1', 5000);
    await b.agentGrants.grant('7', 'g1', 3000); // an earlier expiry does not shorten it
    await b.agentGrants.grant('7', 'g2', 4000);
    assert.deepEqual((await a.agentGrants.holders('7', 3500)).sort(), ['0xOne', '0xTwo']);
    assert.deepEqual(await a.agentGrants.holders('7', 4500), ['0xOne'], 'g2 expired at 4000; g1 kept 5000');
    assert.deepEqual(await a.agentGrants.revokedSessions('7', 1000), []);
    await b.sessions.revoke('g2', 'logout', 2000);
    assert.deepEqual(await a.agentGrants.revokedSessions('7', 1000), ['g2']);
    await a.agentGrants.prune(4000);
    assert.deepEqual(await b.agentGrants.revokedSessions('7', 1000), [], 'pruned');
  });

  test('cut-offs only rise; deployment views', async () => {
    assert.equal(await a.agentGrants.cutoff('9'), 0);
    await a.agentGrants.raiseCutoff('9', 5000);
    await b.agentGrants.raiseCutoff('9', 4000);
    assert.equal(await b.agentGrants.cutoff('9'), 5000);
    await engine.query(engine.kind === 'sqlite'
      ? "INSERT INTO deployments (id, nft_token_id, wallet, provider, status, resources, agent, created_at, updated_at) VALUES ('d1', '9', 'w', 'local', 'running', '{}', '{}', 1, 1), ('d0', '9', 'w', 'local', 'stopped', '{}', '{}', 0, 0)"
      : "INSERT INTO deployments (id, nft_token_id, wallet, provider, status, resources, agent, created_at, updated_at) VALUES ('d1', '9', 'w', 'local', 'running', '{}', '{}', 1, 1), ('d0', '9', 'w', 'local', 'stopped', '{}', '{}', 0, 0)");
    assert.deepEqual(await a.agentGrants.deployment('d0'), { id: 'd0', nft_token_id: '9', status: 'stopped', endpoint_url: null });
    assert.deepEqual(await b.agentGrants.latestDeployment('9'), { id: 'd1', nft_token_id: '9', status: 'running', endpoint_url: null, provider: 'local' });
    assert.equal(await a.agentGrants.deployment('nope'), undefined);
  });
}
