import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { renderSdl } from '../adapters/providers/akash/index.js';
import { renderCompose, renderSecretsEnv } from '../adapters/providers/secretvm/index.js';
import { readDockerfile, runContainer } from './fakes/container.js';
import { startIngress } from './fakes/ingress-proxy.js';
import { sdlService } from './fakes/akash-api.js';
import { composeAgent } from './fakes/secretvm-api.js';
import { contractSpec } from './helpers/provider-contract.js';
import { caRequest, testTls } from './helpers/tls.js';
import { tempDir } from './helpers/server.js';

/**
 * The agent as its image runs it (ENV and CMD read from the Dockerfile), given the env a
 * deployment sends, reached through a proxy that behaves like its provider's ingress.
 */

const spec = () => contractSpec({ nftTokenId: '314', secrets: { PANTHERS_AGENT_SYSTEM_PROMPT: 'You are a panther.' } });

test('image: the Dockerfile is read (production env, port 8080, the agent command)', () => {
  const img = readDockerfile();
  assert.equal(img.env.NODE_ENV, 'production');
  assert.equal(img.env.PANTHERS_ENV, 'production');
  assert.equal(img.env.PORT, '8080');
  assert.equal(img.env.PANTHERS_DATA_DIR, '/app/data');
  assert.deepEqual(img.cmd, ['node', 'dist/bin/panthers.js', 'agent']);
  assert.equal(img.workdir, '/app');
  assert.deepEqual(img.expose, [8080]);
  assert.equal(img.env.PANTHERS_RUN_AS, "1000:1000");
  assert.equal(img.user, undefined, "starts as root only to take the data dir, then drops (src/run-as.ts)");
});

test('image: without the deploy env the agent refuses everything (the finding: 403 "HTTPS is required")', async () => {
  const c = await runContainer({ env: { PANTHERS_AGENT_NFT: '314' } });
  try {
    const res = await caRequest(`${c.url}/health`);
    assert.equal(res.status, 403);
    assert.equal(res.body.error.details.https_required, true);
  } finally {
    await c.stop();
  }
});

test('image on Akash: the SDL env, behind an ingress-nginx-like proxy, plain HTTP and provider TLS', async () => {
  const config = loadConfig({});
  const { env } = sdlService(renderSdl(spec(), config.akash));
  assert.equal(env.PANTHERS_INGRESS, 'http');
  // The persistent volume as Akash mounts it: a directory owned by root.
  const volume = tempDir('panthers-vol-');
  const c = await runContainer({ env, mounts: { '/app/data': volume } });
  const plain = await startIngress({ kind: 'nginx-ingress', target: c.url });
  const tls = testTls();
  const secure = await startIngress({ kind: 'nginx-ingress', target: c.url, tls });
  try {
    const h = await caRequest(`${plain.url}/health`, { headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' } });
    assert.equal(h.status, 200, h.text);
    assert.equal(h.body.status, 'healthy');
    // What the agent was told: the ingress replaced the client's own forwarding headers.
    assert.equal(plain.lastForwarded()!['x-forwarded-for'], '127.0.0.1');
    assert.equal(plain.lastForwarded()!['x-forwarded-proto'], 'http');
    assert.equal(plain.lastForwarded()!['x-original-forwarded-for'], '6.6.6.6');
    const info = await caRequest(`${plain.url}/info`);
    assert.equal(info.body.nft_token_id, '314');
    // A provider with a certificate at its ingress: the same agent over https.
    const s = await caRequest(`${secure.url}/health`, { ca: tls.ca });
    assert.equal(s.status, 200, s.text);
    assert.equal(secure.lastForwarded()!['x-forwarded-proto'], 'https');
    // The data dir is the volume, not the container layer.
    assert.equal(c.env.PANTHERS_DATA_DIR, volume);
    assert.ok(fs.readdirSync(volume).length > 0, 'the agent wrote its state to the volume');
    if (process.getuid?.() === 0) {
      // Started as root (as the image is): it took the root-owned volume and dropped to node.
      const status = fs.readFileSync(`/proc/${c.child.pid}/status`, 'utf8');
      assert.match(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
      assert.equal(fs.statSync(volume).uid, 1000);
      for (const f of fs.readdirSync(volume)) assert.equal(fs.statSync(`${volume}/${f}`).uid, 1000, f);
    }
  } finally {
    await plain.close();
    await secure.close();
    await c.stop();
  }
});

test('image on SecretVM: the compose env + .env, behind a Traefik-like TLS proxy; plain HTTP is refused', async () => {
  const tls = testTls();
  const s = spec();
  const proxy = await startIngress({ kind: 'traefik', target: 'http://127.0.0.1:9', tls });
  const svc = composeAgent(renderCompose(s, 'img'), renderSecretsEnv(s.secrets), { DOMAIN_NAME: proxy.host });
  assert.equal(svc.tlsPort, 8080, 'the compose file routes Traefik websecure to the agent');
  assert.equal(svc.env.PANTHERS_INGRESS, 'tls');
  assert.equal(svc.env.PANTHERS_AGENT_SYSTEM_PROMPT, 'You are a panther.');
  const c = await runContainer({ env: svc.env, mounts: { '/app/data': tempDir('panthers-vol-') } });
  proxy.setTarget(c.url);
  try {
    const h = await caRequest(`https://${proxy.host}/health`, { ca: tls.ca });
    assert.equal(h.status, 200, h.text);
    assert.equal(proxy.lastForwarded()!['x-forwarded-proto'], 'https');
    // It knows its public URL (https://<vmDomain>, from the VM's DOMAIN_NAME): sign-in messages name it.
    assert.equal(c.env.PANTHERS_PUBLIC_URL, `https://${proxy.host}`);
    // Not through the TLS proxy: refused, whatever the caller claims.
    const direct = await caRequest(`${c.url}/health`, { headers: { 'x-forwarded-proto': 'http' } });
    assert.equal(direct.status, 403);
  } finally {
    await proxy.close();
    await c.stop();
  }
});
