import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import postgres from 'postgres';
import { connect } from '@nats-io/transport-node';
import { startNats, startPostgres, type Nats, type Postgres } from './helpers/engines.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

/**
 * The partition tool of the cluster fault tests, against the real clients it stands between:
 * porsager `postgres` and `@nats-io/transport-node` through the proxy, a cut, a restore.
 */
let pg: Postgres;
let nats: Nats;

before(async () => {
  [pg, nats] = await Promise.all([startPostgres(), startNats()]);
});
after(() => {
  pg?.stop();
  nats?.stop();
});

test('PostgreSQL through the proxy: a cut resets the connection and refuses new ones; restore heals', async () => {
  const proxy = await TcpProxy.start(pg.port);
  // (a pool like a node's: porsager postgres with max 1 did not reconnect after a refused
  // reconnect here, CONNECT_TIMEOUT every 2 s with the link back, while a pool of 4 does at once)
  const sql = postgres(proxy.url(pg.url), { max: 4, connect_timeout: 2, onnotice: () => undefined });
  try {
    assert.equal((await sql`SELECT 1 AS one`)[0]!.one, 1);
    assert.equal(proxy.open, 1);
    proxy.cut('refuse');
    await assert.rejects(sql`SELECT 2`, 'a query on a cut link fails');
    await assert.rejects(sql`SELECT 3`, 'reconnecting is refused');
    await assert.rejects(new Promise((resolve, reject) => net.connect(proxy.port, '127.0.0.1').on('connect', resolve).on('error', reject)), /ECONNREFUSED/);
    await proxy.restore();
    assert.equal((await sql`SELECT 4 AS four`)[0]!.four, 4, 'the same pool works again');
    assert.ok(proxy.bytesSince(0) > 0, 'client bytes are counted');
  } finally {
    await sql.end({ timeout: 1 });
    await proxy.close();
  }
});

test('blackhole: a new connection is accepted and never answered', async () => {
  const proxy = await TcpProxy.start(pg.port);
  proxy.cut('blackhole');
  const sql = postgres(proxy.url(pg.url), { max: 1, connect_timeout: 1, onnotice: () => undefined });
  try {
    const t0 = performance.now();
    await assert.rejects(sql`SELECT 1`);
    assert.ok(performance.now() - t0 >= 900, 'it failed by the client timeout, not by a reset');
  } finally {
    await sql.end({ timeout: 1 });
    await proxy.close();
  }
});

test('NATS through the proxy: the client sees the cut and reconnects after restore', async () => {
  const proxy = await TcpProxy.start(nats.port);
  const nc = await connect({ servers: proxy.address, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  try {
    const sub = nc.subscribe('t.echo');
    (async () => { for await (const m of sub) m.respond(m.data); })();
    // The responder lives on the same connection, so a round trip proves the link.
    assert.equal((await nc.request('t.echo', 'a', { timeout: 1000 })).string(), 'a');
    proxy.cut('refuse');
    await assert.rejects(nc.request('t.echo', 'b', { timeout: 300 }));
    await proxy.restore();
    const until = performance.now() + 5000;
    let got = '';
    while (!got && performance.now() < until) {
      got = await nc.request('t.echo', 'c', { timeout: 300 }).then((m) => m.string(), () => '');
    }
    assert.equal(got, 'c', 'reconnected through the restored link');
  } finally {
    await nc.close();
    await proxy.close();
  }
});

test('stall: open connections carry nothing, and a raw socket sees no reset', async () => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const proxy = await TcpProxy.start((echo.address() as net.AddressInfo).port);
  const sock = net.connect(proxy.port, '127.0.0.1');
  try {
    await new Promise((r) => sock.once('connect', r));
    const got: string[] = [];
    sock.on('data', (d) => got.push(d.toString()));
    sock.write('x');
    const until = performance.now() + 2000;
    while (!got.length && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ['x']);
    proxy.stall();
    sock.write('y');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got, ['x'], 'nothing came back while stalled');
    assert.equal(sock.destroyed, false);
  } finally {
    sock.destroy();
    await proxy.close();
    echo.close();
  }
});
