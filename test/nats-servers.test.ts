import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { natsServers } from '../src/cluster/nats-servers.js';
import { startNats } from './helpers/engines.js';

test('credentials in PANTHERS_NATS_URL become connect options, and the servers list keeps none', () => {
  assert.deepEqual(natsServers('nats://u:p%40ss@10.0.0.1:4222, nats://u:p%40ss@10.0.0.2:4222'), {
    servers: ['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222'], user: 'u', pass: 'p@ss',
  });
  assert.deepEqual(natsServers('tls://tok3n@nats.internal:4222'), { servers: ['tls://nats.internal:4222'], token: 'tok3n' });
  assert.deepEqual(natsServers('nats://127.0.0.1:4222'), { servers: ['nats://127.0.0.1:4222'] });
  assert.throws(() => natsServers('nats://a:b@h1:4222,nats://c:d@h2:4222'), /same credentials/);
});

test('a node reaches a nats-server that requires a user and password, given them in the URL', async (t) => {
  const nats = await startNats(['--user', 'panthers', '--pass', 's3cret']);
  t.after(() => nats.stop());
  const url = `nats://panthers:s3cret@127.0.0.1:${nats.port}`;
  const nc = await connect({ ...natsServers(url), maxReconnectAttempts: 0 });
  await nc.flush();
  await nc.close();
  // Without them the server refuses the connection.
  await assert.rejects(connect({ ...natsServers(`nats://127.0.0.1:${nats.port}`), maxReconnectAttempts: 0 }));
  await assert.rejects(connect({ ...natsServers(`nats://panthers:wrong@127.0.0.1:${nats.port}`), maxReconnectAttempts: 0 }));
});

test('a node reaches a nats-server that requires a token, given it in the URL', async (t) => {
  const nats = await startNats(['--auth', 'tok3n']);
  t.after(() => nats.stop());
  const nc = await connect({ ...natsServers(`nats://tok3n@127.0.0.1:${nats.port}`), maxReconnectAttempts: 0 });
  await nc.flush();
  await nc.close();
});
