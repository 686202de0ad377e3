import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnCli, tempDir, request, type ServerProcess } from './helpers/server.js';

/**
 * Uploads `size` bytes as fast as the socket takes them, without waiting for an answer (as curl
 * and browsers do), and resolves with what the server sent back before the connection ended.
 */
function upload(port: number, size: number, chunked: boolean): Promise<{ reply: string; error?: string }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let reply = '';
    let error: string | undefined;
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const pump = () => {
      while (sent < size && !sock.destroyed) {
        const part = chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]) : chunk;
        sent += chunk.length;
        if (!sock.write(part)) return void sock.once('drain', pump);
      }
      if (chunked && !sock.destroyed) sock.write('0\r\n\r\n');
    };
    sock.on('connect', () => {
      sock.write(`POST /v1/auth/challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${size}`}\r\n\r\n`);
      pump();
    });
    sock.on('data', (d) => {
      reply += d.toString('latin1');
      // The answer is whole and says Connection: close: hang up, as an HTTP/1.1 client must.
      if (reply.endsWith('\r\n0\r\n\r\n')) sock.end();
    });
    sock.on('error', (e) => (error = (e as NodeJS.ErrnoException).code ?? e.message));
    sock.on('close', () => resolve({ reply, error }));
    sock.setTimeout(10_000, () => sock.destroy());
  });
}

describe('an oversized upload is answered 413, never with a dropped connection (lingering close)', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await spawnCli(['serve'], { PORT: '0', PANTHERS_DATA_DIR: tempDir(), PANTHERS_RATE_LIMITS: 'off', PANTHERS_BODY_LIMIT: '65536' });
  });
  after(async () => {
    srv.child.kill('SIGTERM');
    await srv.exited;
  });

  test('40 concurrent uploads of 4 MB (by Content-Length and chunked) all read their 413', async () => {
    const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => upload(srv.port, 4 * 1024 * 1024, i % 2 === 1)));
    const bad = runs.filter((r) => !/^HTTP\/1\.1 413 /.test(r.reply));
    assert.equal(bad.length, 0, `${bad.length} of 40 did not see their 413: ${JSON.stringify(bad.slice(0, 3).map((r) => ({ error: r.error, reply: r.reply.slice(0, 80) })))}`);
    for (const r of runs) {
      // A whole, well-formed HTTP answer: headers, one chunk with the error body, the last chunk.
      const m = /^HTTP\/1\.1 413 [^\r]*\r\n((?:[^\r\n]+\r\n)+)\r\n([0-9a-f]+)\r\n([\s\S]*)\r\n0\r\n\r\n$/.exec(r.reply);
      assert.ok(m, JSON.stringify(r.reply.slice(-200)));
      assert.match(m[1]!, /Transfer-Encoding: chunked/);
      assert.equal(parseInt(m[2]!, 16), Buffer.byteLength(m[3]!));
      assert.equal(JSON.parse(m[3]!).error.code, 'PAYLOAD_TOO_LARGE');
    }
    // The server kept serving throughout.
    assert.equal((await request(srv.url, 'GET', '/v1/health')).status, 200);
  });

  test('fetch (undici, a strict parser) reads the 413 of a 4 MB upload as JSON', async () => {
    const runs = await Promise.all(Array.from({ length: 10 }, () =>
      fetch(`${srv.url}/v1/auth/challenge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(4 * 1024 * 1024, 'a') })
        .then(async (r) => ({ status: r.status, body: (await r.json()) as { error: { code: string } } }))));
    for (const r of runs) {
      assert.equal(r.status, 413);
      assert.equal(r.body.error.code, 'PAYLOAD_TOO_LARGE');
    }
  });

  test('a client that never stops sending is cut off after a bounded linger, with its 413 already sent', async () => {
    const t0 = Date.now();
    const r = await upload(srv.port, 512 * 1024 * 1024, false);
    assert.match(r.reply, /^HTTP\/1\.1 413 /);
    // Cut off after 64 MB more (or 10 s), whichever comes first.
    assert.ok(Date.now() - t0 < 15_000, `lingered ${Date.now() - t0} ms`);
  });
});
