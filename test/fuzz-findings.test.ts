import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from './helpers/server.js';
import { signIn, type SignedIn } from './helpers/wallets.js';
import { openWs } from './helpers/ws.js';

/** Regression tests for defects `npm run fuzz` found (each was a shrunk repro first). */
describe('fuzz findings', () => {
  let server: TestServer;
  let me: SignedIn;
  before(async () => {
    server = await startServer();
    me = await signIn(server, { nft: '5150' });
  });
  after(() => server.stop());

  test('WS: a message type named like an Object.prototype member is an unknown type, not INTERNAL_ERROR', async () => {
    const sock = await openWs(server.url, me.access_token);
    try {
      for (const type of ['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf']) {
        sock.ws.send(JSON.stringify({ type }));
        const f = await sock.next((x) => x.type === 'error' && x.request_type === type);
        assert.equal(f.error.code, 'INVALID_FIELD', JSON.stringify(f));
        assert.equal(f.error.details.field, 'type');
      }
      sock.ws.send('{"type":"ping"}');
      await sock.next((x) => x.type === 'pong');
    } finally {
      sock.ws.close();
    }
  });
});

describe('fuzz findings: bodies', () => {
  test('a request with an empty body whose header section arrives in pieces is answered (it hung: uWS never reports the end of an empty body then)', async () => {
    const server = await startServer();
    try {
      const me = await signIn(server, { nft: '5151' });
      const net = await import('node:net');
      const s = net.connect(server.port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      let got = '';
      s.on('data', (d) => { got += d.toString('latin1'); });
      const inPieces = async (raw: string) => {
        const step = Math.ceil(raw.length / 4);
        for (let i = 0; i < raw.length; i += step) {
          s.write(raw.slice(i, i + step));
          await new Promise((r) => setTimeout(r, 25));
        }
      };
      const answers = (n: number) => (got.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= n;
      const until = async (n: number) => {
        for (let i = 0; i < 200 && !answers(n); i++) await new Promise((r) => setTimeout(r, 10));
        assert.ok(answers(n), `answer ${n} within 2 s; got ${JSON.stringify(got.slice(0, 300))}`);
      };
      await inPieces(`DELETE /v1/deployments/5151 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${me.access_token}\r\nContent-Length: 0\r\n\r\n`);
      await until(1);
      assert.match(got, /^HTTP\/1\.1 404 /, 'no deployment yet: NOT_FOUND');
      // No Content-Length at all is an empty body too; the kept-alive connection still works.
      await inPieces(`POST /v1/auth/logout HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${me.access_token}\r\n\r\n`);
      await until(2);
      assert.match(got, /HTTP\/1\.1 200 [^]*Logged out/);
      s.destroy();
    } finally {
      await server.stop();
    }
  });
});

describe('fuzz findings: nested objects', () => {
  test('POST /deployments: an array where resources or agent must be an object is INVALID_FIELD (it was taken as {})', async () => {
    const server = await startServer();
    try {
      const me = await signIn(server, { nft: '5152' });
      for (const field of ['resources', 'agent']) {
        for (const value of [[], [1, 2], ['cpu']]) {
          const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '5152', provider: 'local', [field]: value } });
          assert.equal(r.status, 400, r.text);
          assert.equal(r.body.error.code, 'INVALID_FIELD');
          assert.equal(r.body.error.details.field, field);
        }
      }
      const ok = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '5152', provider: 'local', resources: { cpu: 1 }, agent: { name: 'Ada' } } });
      assert.equal(ok.status, 202, ok.text);
    } finally {
      await server.stop();
    }
  });
});

describe('fuzz findings: OpenAI-compatible body', () => {
  test('POST /openai/v1/chat/completions: an array for stream_options or for a message is INVALID_FIELD', async () => {
    const server = await startServer();
    try {
      const me = await signIn(server, { nft: '5153' });
      const d = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: '5153', provider: 'local' } });
      assert.equal(d.status, 202, d.text);
      const url = '/v1/agents/5153/openai/v1/chat/completions';
      const base = { model: 'scripted', messages: [{ role: 'user', content: 'hi' }] };
      for (const [body, param] of [[{ ...base, stream_options: [] }, 'stream_options'], [{ ...base, messages: [[]] }, 'messages.0']] as const) {
        const r = await server.request('POST', url, { token: me.access_token, body });
        assert.equal(r.status, 400, r.text);
        assert.equal(r.body.error.code, 'invalid_field');
        assert.equal(r.body.error.param, param);
      }
    } finally {
      await server.stop();
    }
  });
});
