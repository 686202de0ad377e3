import { clusterMacKey, checkMac, macValue } from '../src/cluster/cluster-mac.js';

/**
 * The cost of authenticating a cluster message (src/cluster/cluster-mac.ts): µs to sign and to
 * verify a message, next to what each message already costs (JSON.stringify + parse of the same
 * body), interleaved A B A B, the median reported. A benchmark, not a test: it asserts nothing.
 *
 *   node dist/bench/cluster-mac.bench.js [--rounds=5] [--n=50000]
 */
function arg(name: string, dflt: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
}
const ROUNDS = arg('rounds', 5);
const N = arg('n', 50_000);
const enc = new TextEncoder();
const dec = new TextDecoder();
const key = clusterMacKey('bench-cluster-secret-0123456789abcdef');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

for (const size of [64, 300, 4000]) {
  const msg = { k: 'agent', key: '0xabc:1', m: { type: 'turn', wallet: '0x' + 'a'.repeat(40), content: 'x'.repeat(size) } };
  const body = enc.encode(JSON.stringify(msg));
  const subject = 'panthers.shard.3';
  const now = Date.now();
  const value = macValue(key, subject, body, now);
  const sign: number[] = [], verify: number[] = [], json: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let t = performance.now();
    for (let i = 0; i < N; i++) macValue(key, subject, body, now);
    sign.push(((performance.now() - t) * 1000) / N);
    t = performance.now();
    for (let i = 0; i < N; i++) checkMac(key, subject, body, value, now);
    verify.push(((performance.now() - t) * 1000) / N);
    t = performance.now();
    for (let i = 0; i < N; i++) JSON.parse(dec.decode(enc.encode(JSON.stringify(msg))));
    json.push(((performance.now() - t) * 1000) / N);
  }
  const s = median(sign), v = median(verify), j = median(json);
  console.log(`${String(body.length).padStart(5)} B  sign ${s.toFixed(2)} µs  verify ${v.toFixed(2)} µs  json encode+decode ${j.toFixed(2)} µs  (sign+verify)/json ${((s + v) / j).toFixed(2)}x`);
}
