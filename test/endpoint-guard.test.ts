import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { assertPublicEndpoint, isPrivateAddress, PrivateEndpointError, safeGet } from '../adapters/providers/endpoint-guard.js';
import { checkHealth, HEALTH_BODY_LIMIT } from '../adapters/providers/http-client.js';

/** The SSRF rules for URLs a provider reports (lease URIs, VM domains). */

async function server(handler: http.RequestListener): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, close: () => new Promise((r) => { s.closeAllConnections(); s.close(() => r()); }) };
}

test('endpoint guard: private, loopback, link-local, CGNAT, reserved and mapped addresses are private; public ones are not', () => {
  for (const ip of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '64:ff9b::a00:1', 'not-an-ip']) {
    assert.equal(isPrivateAddress(ip), true, ip);
  }
  for (const ip of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
    assert.equal(isPrivateAddress(ip), false, ip);
  }
});

test('endpoint guard: a reported endpoint on a private address (literal or by name) is refused unless allowed', async () => {
  await assert.rejects(assertPublicEndpoint('http://127.0.0.1:8080', false, 'akash'), /private or loopback address \(127\.0\.0\.1\)/);
  await assert.rejects(assertPublicEndpoint('https://[::1]/', false, 'secret_vm'), /private or loopback/);
  await assert.rejects(assertPublicEndpoint('http://localhost:1234', false, 'akash'), /private or loopback/);
  await assert.rejects(assertPublicEndpoint('file:///etc/passwd', false, 'akash'), /not a plain http\(s\) URL/);
  await assert.rejects(assertPublicEndpoint('http://user:pw@8.8.8.8/', false, 'akash'), /not a plain http\(s\) URL/);
  await assertPublicEndpoint('http://127.0.0.1:8080', true, 'akash');
  await assertPublicEndpoint('http://8.8.8.8', false, 'akash');
});

test('health checks: no connection to a private address, no redirect into one, a capped body, a bounded time', async () => {
  let hits = 0;
  const target = await server((req, res) => {
    hits++;
    if (req.url === '/redirect/health') {
      // Same server, but reached as 127.0.0.2: the redirect's target must be checked too.
      res.writeHead(302, { location: `http://127.0.0.2:${(req.socket.address() as AddressInfo).port}/health` });
      return res.end();
    }
    if (req.url === '/huge/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => { while (res.write(chunk)) { /* until the socket pushes back */ } };
      res.on('drain', pump);
      pump();
      return;
    }
    if (req.url === '/slow/health') return; // never answers
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"healthy"}');
  });
  try {
    // Default rules: loopback is refused before any connection.
    const refused = await checkHealth(target.url, 2000);
    assert.equal(refused.ok, false);
    assert.match(refused.message, /refused: 127\.0\.0\.1 resolves to 127\.0\.0\.1, a private or loopback address/);
    const byName = await checkHealth(`http://localhost:${target.port}`, 2000);
    assert.equal(byName.ok, false);
    assert.match(byName.message, /refused: localhost resolves to/);
    assert.equal(hits, 0, 'nothing reached the private server');

    // Allowed (tests, private clouds): answers are read.
    assert.equal((await checkHealth(target.url, 2000, undefined, true)).ok, true);

    // A redirect into a blocked range is not followed (every hop goes through the same check).
    const blocked = (ip: string) => ip === '127.0.0.2';
    await assert.rejects(safeGet(`${target.url}/redirect/health`, { allowPrivate: false, blocked, timeoutMs: 2000, maxBytes: 1024 }), PrivateEndpointError);
    await assert.rejects(safeGet(`${target.url}/redirect/health`, { allowPrivate: true, maxRedirects: 0, timeoutMs: 2000, maxBytes: 1024 }), /more than 0 redirects/);

    // A body that never ends is cut at the cap.
    const huge = await safeGet(`${target.url}/huge/health`, { allowPrivate: true, timeoutMs: 5000, maxBytes: HEALTH_BODY_LIMIT });
    assert.equal(huge.truncated, true);
    assert.equal(huge.body.length, HEALTH_BODY_LIMIT);
    assert.equal((await checkHealth(`${target.url}/huge`, 5000, undefined, true)).ok, true);

    // An endpoint that never answers costs the timeout, not more.
    const t0 = performance.now();
    const slow = await checkHealth(`${target.url}/slow`, 300, undefined, true);
    assert.equal(slow.ok, false);
    assert.match(slow.message, /no answer within 300 ms/);
    assert.ok(performance.now() - t0 < 2000);
  } finally {
    await target.close();
  }
});
