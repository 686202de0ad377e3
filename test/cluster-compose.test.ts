import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ROOT } from './helpers/server.js';
import { loadConfig } from '../src/config.js';

/**
 * examples/cluster/compose.yaml parses (js-yaml, the YAML parser already in the dependency tree
 * through @apidevtools/swagger-parser) and is consistent: PostgreSQL 15, NATS 2.9, three nodes from
 * the project's Dockerfile running `serve` with distinct ids on the same engines and a config this
 * version accepts, and nginx in front with a config naming every node and forwarding WebSockets.
 * (No Docker daemon here: this checks the file, not a running stack.)
 */
const require = createRequire(import.meta.url);
const yaml = require('js-yaml') as { load(text: string): any };
const dir = path.join(ROOT, 'examples/cluster');

test('examples/cluster/compose.yaml: PostgreSQL 15, NATS 2.9, three nodes from the Dockerfile, nginx in front', () => {
  const doc = yaml.load(fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8'));
  const s = doc.services;
  assert.match(s.postgres.image, /^postgres:15/);
  assert.match(s.nats.image, /^nats:2\.9/);
  const nodes = Object.keys(s).filter((k) => k.startsWith('node-'));
  assert.equal(nodes.length, 3);
  const ids = new Set<string>();
  for (const n of nodes) {
    const svc = s[n];
    assert.deepEqual(svc.command, ['node', 'dist/bin/panthers.js', 'serve']);
    assert.ok(fs.existsSync(path.join(dir, svc.build.context, svc.build.dockerfile)), 'built from the project Dockerfile');
    const env = Object.fromEntries(Object.entries(svc.environment).map(([k, v]) => [k, String(v)]));
    ids.add(env.PANTHERS_NODE_ID!);
    assert.match(env.PANTHERS_DATABASE_URL!, /^postgres:\/\/.*@postgres:5432\//);
    // Authenticated NATS link: the node's URL carries the user the nats service requires.
    const nu = new URL(env.PANTHERS_NATS_URL!);
    assert.equal(`${nu.protocol}//${nu.host}`, 'nats://nats:4222');
    const cmd: string[] = s.nats.command;
    assert.equal(decodeURIComponent(nu.username), cmd[cmd.indexOf('--user') + 1]);
    assert.equal(decodeURIComponent(nu.password), cmd[cmd.indexOf('--pass') + 1]);
    assert.equal(s.nats.ports, undefined, 'NATS is not published on the host');
    assert.match(env.PANTHERS_CLUSTER_SECRET!, /^\$\{PANTHERS_CLUSTER_SECRET:\?/, 'the signing-key secret comes from the operator, not the example');
    const c = loadConfig(env);
    assert.equal(c.cluster?.nodeId, env.PANTHERS_NODE_ID);
    assert.deepEqual(c.trustedProxies, [s.proxy.networks.panthers.ipv4_address], 'the proxy is the trusted one');
  }
  assert.equal(ids.size, 3, 'distinct node ids');
  assert.match(s.proxy.image, /^nginx:/);
  const mount = s.proxy.volumes.find((v: string) => v.includes('nginx.conf'));
  const conf = fs.readFileSync(path.join(dir, mount.split(':')[0]), 'utf8');
  for (const n of nodes) assert.match(conf, new RegExp(`server ${n}:8080`));
  assert.match(conf, /proxy_set_header Upgrade \$http_upgrade/);
  assert.match(conf, /proxy_set_header X-Forwarded-For/);
  // braces balance (a cheap syntax check without an nginx binary)
  assert.equal((conf.match(/\{/g) ?? []).length, (conf.match(/\}/g) ?? []).length);
});
