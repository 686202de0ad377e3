import { test } from 'node:test';
import assert from 'node:assert/strict';
import { natsLinkOptions } from '../src/cluster/nats-url.js';

/** PANTHERS_NATS_URL's credentials become the NATS client's options (it ignores them in a URL). */
test('natsLinkOptions: user:pass@ and token@ leave the URLs and become user/pass or token', () => {
  assert.deepEqual(natsLinkOptions('nats://nats:4222'), { servers: ['nats://nats:4222'] });
  assert.deepEqual(natsLinkOptions('nats://pan:s%2F3cret%40@a:4222, tls://pan:s%2F3cret%40@b:4222'),
    { servers: ['nats://a:4222', 'tls://b:4222'], user: 'pan', pass: 's/3cret@' });
  assert.deepEqual(natsLinkOptions('nats://t0ken@a:4222'), { servers: ['nats://a:4222'], token: 't0ken' });
  assert.deepEqual(natsLinkOptions('nats://u:%zz@a:4222'), { servers: ['nats://a:4222'], user: 'u', pass: '%zz' });
});
