import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_SECRET, type StoreEngine } from '../helpers/state-engines.js';
import { loadOrCreateSigningKeyIn, TokenService, TOKEN_ISSUER, SIGNING_KEY_FILE } from '../../src/auth/tokens.js';
import { loadAgentCredentialKey } from '../../src/auth/agent-access.js';
import { tempDir } from '../helpers/server.js';

/** SecretStore: created once, read by every node; in PostgreSQL encrypted under the cluster secret. */
export function secretsContract(open: () => Promise<StoreEngine>): void {
  let engine: StoreEngine;
  before(async () => {
    engine = await open();
  });
  after(() => engine.close());

  test('getOrCreate keeps the first value', async () => {
    const a = engine.node().secrets;
    const b = engine.node().secrets;
    const v1 = await a.getOrCreate('one', () => Buffer.from('first'));
    const v2 = await b.getOrCreate('one', () => Buffer.from('second'));
    assert.equal(v1.toString(), 'first');
    assert.equal(v2.toString(), 'first');
  });

  test('two nodes starting at once end with one JWT signing key and one credential key', async () => {
    for (let round = 0; round < 3; round++) {
      const nodes = Array.from({ length: 4 }, () => engine.node().secrets);
      // A fresh name per round: every node sees no key yet, all make one, one wins.
      const name = `${SIGNING_KEY_FILE}.${round}`;
      const rename = (s: (typeof nodes)[number]) => ({ getOrCreate: (_: string, make: () => Promise<Buffer> | Buffer) => s.getOrCreate(name, make) });
      const keys = await Promise.all(nodes.map((s) => loadOrCreateSigningKeyIn(rename(s))));
      assert.equal(new Set(keys.map((k) => k.kid)).size, 1, `round ${round}: one key`);
    }
    const services = await Promise.all([0, 1].map(() => TokenService.create(tempDir(), TOKEN_ISSUER, Date.now, engine.node().secrets)));
    assert.equal(services[0]!.kid, services[1]!.kid);
    // What one node signs, the other verifies.
    const t = await services[0]!.issue({ sub: '0xabc', nft: '7', sid: 's' });
    assert.equal((await services[1]!.verify(t.token)).sub, '0xabc');
    assert.deepEqual(services[0]!.deriveSecret('refresh-rotation'), services[1]!.deriveSecret('refresh-rotation'), 'the rotation key too');
    const creds = await Promise.all([0, 1, 2].map(() => loadAgentCredentialKey(engine.node().secrets)));
    assert.equal(creds[0]!.length, 32);
    assert.ok(creds.every((c) => c.equals(creds[0]!)));
  });

  test('PostgreSQL: stored encrypted; a node with another cluster secret refuses to start', async (t) => {
    if (engine.kind !== 'postgres') return t.skip('SQLite keeps keys in 0600 files of the data dir');
    await engine.node().secrets.getOrCreate('plain-check', () => Buffer.from('{"d":"very-secret-scalar"}'));
    const [row] = await engine.query<{ value: Buffer }>("SELECT value FROM node_secrets WHERE name = 'plain-check'");
    assert.ok(!row!.value.toString('latin1').includes('very-secret-scalar'), 'not in clear');
    const wrong = engine.nodeWithSecret(CLUSTER_SECRET.replace(/.$/, 'X'));
    await assert.rejects(wrong.secrets.getOrCreate('plain-check', () => Buffer.from('x')), /does not decrypt.*same secret/);
    assert.throws(() => engine.nodeWithSecret('short'), /at least 32/);
  });
}
