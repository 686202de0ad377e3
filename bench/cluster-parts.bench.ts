/**
 * Costs of the cluster-mode building blocks (not a test), against a real PostgreSQL 15 and
 * nats-server 2.9 started here (test/helpers/engines.ts): what an owned write, a lease renewal,
 * a forwarded ask and a cross-node chat chunk cost, as latency and as this process's CPU per
 * operation. Two cores measure contention, not scale: docs/cluster.md turns these figures into
 * a capacity argument on paper.
 *   node dist/bench/cluster-parts.bench.js [--n 2000]
 */
import postgres from 'postgres';
import { connect } from '@nats-io/transport-node';
import { parseArgs } from '../bin/args.js';
import { startPostgres, startNats } from '../test/helpers/engines.js';
import { ShardLeases } from '../src/cluster/shard-leases.js';
import { Forwarder } from '../src/cluster/forwarder.js';
import { FrameRelay } from '../src/cluster/frame-relay.js';

const { flags } = parseArgs(process.argv.slice(2));
const N = Number(flags.n ?? 2000);
const [pg, nats] = await Promise.all([startPostgres(), startNats()]);
const sql = postgres(pg.url, { max: 8, onnotice: () => {} });

async function measure(name: string, n: number, inFlight: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < Math.min(100, n); i++) await fn(i);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < n) await fn(next++);
  }));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = (cpu.user + cpu.system) / n;
  console.log(`${name.padEnd(48)} ${(n / (ms / 1000)).toFixed(0).padStart(7)} /s  ${((ms / n) * inFlight).toFixed(3).padStart(8)} ms each  ${cpuUs.toFixed(1).padStart(7)} us CPU/op (this process)`);
}

try {
  await ShardLeases.migrate(sql);
  await sql`CREATE TABLE bench_writes (shard int, n int, body text)`;
  const leases = new ShardLeases(sql, 'bench-node', 60_000);
  for (let s = 0; s < 86; s++) await leases.claim(s); // a third of 256: one of three nodes
  const body = 'x'.repeat(200);
  await measure('plain INSERT (1 in flight)', N, 1, (i) => sql`INSERT INTO bench_writes VALUES (1, ${i}, ${body})`);
  await measure('fenced INSERT: tx + lease FOR SHARE (1 in flight)', N, 1, (i) => leases.fenced(1, (tx) => tx`INSERT INTO bench_writes VALUES (1, ${i}, ${body})`));
  await measure('fenced INSERT (8 in flight)', N, 8, (i) => leases.fenced(i % 86, (tx) => tx`INSERT INTO bench_writes VALUES (${i % 86}, ${i}, ${body})`));
  await measure('renew 86 shards in one statement', Math.max(50, N / 20), 1, () => leases.renew());

  const a = await connect({ servers: nats.url, noEcho: true });
  const b = await connect({ servers: nats.url, noEcho: true });
  const owner = new Forwarder(a);
  const asker = new Forwarder(b);
  owner.serve(5, async (m) => ({ value: m }));
  await a.flush();
  const local = async (m: unknown) => ({ value: m });
  await measure('local ask (no NATS)', N, 1, (i) => local({ type: 'info', i }));
  await measure('forwarded ask over NATS (1 in flight)', N, 1, (i) => asker.ask(5, { type: 'info', i }, 5000));
  await measure('forwarded ask over NATS (16 in flight)', N, 16, (i) => asker.ask(5, { type: 'info', i }, 5000));

  let received = 0;
  const producer = new FrameRelay(a, () => {});
  const follower = new FrameRelay(b, () => received++);
  follower.follow('chat:bench');
  await b.flush();
  const frame = JSON.stringify({ type: 'chat_chunk', conversation_id: 'bench', nft_token_id: '42', done: false, content: 'token ' });
  const chunks = N * 50;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < chunks; i++) {
    producer.publish('chat:bench', frame);
    if (i % 100 === 99) await new Promise((r) => setImmediate(r)); // 100 chunks per event-loop turn
  }
  await a.flush();
  while (received < chunks && performance.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 5));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(`${'cross-node chat chunks (100 per turn)'.padEnd(48)} ${(chunks / (ms / 1000)).toFixed(0).padStart(7)} /s  ${producer.stats.messages} NATS msgs for ${producer.stats.frames} frames  ${((cpu.user + cpu.system) / chunks).toFixed(2)} us CPU/chunk (producer+follower in this process)`);
  await a.close();
  await b.close();
} finally {
  await sql.end({ timeout: 1 });
  pg.stop();
  nats.stop();
}
