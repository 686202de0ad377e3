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
