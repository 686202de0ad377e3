import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import { HttpClient } from '../adapters/providers/http-client.js';
import { guardProviderCalls, ProviderCallRefused } from '../adapters/providers/provider-guard.js';

/**
 * The guard on provider calls (cluster mode: "this node still holds the NFT's lease") runs
 * before fetch starts AND right before undici writes the request to the socket, so a node that
 * was paused while its call waited for a connection sends nothing when it resumes. A real TCP
 * server on 127.0.0.1 counts every byte it receives.
 */
async function server() {
  let bytes = 0;
  let connections = 0;
  const srv = net.createServer((s) => {
    connections++;
    s.on('data', (d) => {
      bytes += d.length;
      if (d.includes('\r\n\r\n')) s.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: keep-alive\r\n\r\n{"ok":true}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, bytes: () => bytes, connections: () => connections, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

const client = (baseUrl: string) => new HttpClient({ service: 'Test', baseUrl, headers: () => ({}), timeoutMs: 2000, log: pino({ level: 'silent' }), retry: { attempts: 1 } });

test('a guard that still holds lets the call through, on a new and on a pooled connection', async () => {
  const s = await server();
  try {
    const ac = new AbortController();
    let checks = 0;
    guardProviderCalls(ac.signal, () => void checks++);
    const c = client(s.url);
    assert.deepEqual((await c.request('POST', '/a', { json: { x: 1 }, signal: ac.signal })).body, { ok: true });
    assert.deepEqual((await c.request('GET', '/b', { signal: ac.signal })).body, { ok: true });
    assert.equal(checks, 4, 'checked before fetch and at the socket, for each call');
  } finally {
    await s.close();
  }
});

test('a guard that stops holding between fetch and the socket write: nothing is written, the call is refused', async () => {
  const s = await server();
  try {
    const c = client(s.url);
    for (const method of ['POST', 'GET'] as const) {
      const ac = new AbortController();
      let checks = 0;
      // Holds at the first check (before fetch), not at the second (the lease lapsed meanwhile).
      guardProviderCalls(ac.signal, () => {
        if (++checks > 1) throw new Error('this node no longer holds the lease of NFT 1');
      });
      const before = s.bytes();
      await assert.rejects(c.request(method, '/deploy', { json: method === 'POST' ? { sdl: 'x'.repeat(1000) } : undefined, signal: ac.signal }), (e) => e instanceof ProviderCallRefused && /no longer holds/.test(e.message));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(s.bytes() - before, 0, `${method}: no byte reached the provider`);
      assert.equal(checks, 2);
    }
  } finally {
    await s.close();
  }
});
