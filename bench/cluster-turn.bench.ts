import fs from 'node:fs';
import { startEngines, startClusterNodes, waitForBalance, type ClusterNodeProcess } from '../test/helpers/cluster.js';
import { signInProcess } from '../test/helpers/process-sign-in.js';
import { deployLocalAt } from '../test/helpers/streams.js';
import { shardOf } from '../src/cluster/shards.js';

/**
 * A chat turn through the NFT's owner node vs through a node that does not own it (17f): real
 * `panthers serve` cluster nodes on a real PostgreSQL and nats-server, the scripted model with no
 * delay, one SSE turn at a time (a fixed, pinned load). Per turn: time to the first content event,
 * time to the end of the stream (client side), and CPU (utime+stime from /proc/<pid>/stat) of the
 * owner and of the forwarding node.
 *
 *   node dist/bench/cluster-turn.bench.js --turns 200
 */
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const TURNS = arg('turns', 200);
const TICK = 100; // USER_HZ on Linux

function cpuMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(parts[11]) + Number(parts[12])) * 1000) / TICK;
}

async function turn(url: string, nft: string, token: string, cid: string | undefined): Promise<{ first: number; whole: number; cid: string }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/agents/${nft}/chat`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ message: 'How fast is a turn across nodes?', stream: true, ...(cid ? { conversation_id: cid } : {}) }),
  });
  if (res.status !== 200) throw new Error(`turn: ${res.status} ${await res.text()}`);
  let first = 0;
  let buf = '';
  let conv = cid ?? '';
  const dec = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    if (!first && buf.includes('"content":"') && !buf.includes('"content":""')) first = performance.now() - t0;
    const m = /"conversation_id":"([0-9a-f-]{36})"/.exec(buf);
    if (m) conv = m[1]!;
  }
  return { first, whole: performance.now() - t0, cid: conv };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function main(): Promise<void> {
  const engines = await startEngines();
  const cluster = await startClusterNodes(2, engines);
  try {
    const [a, b] = cluster.nodes as [ClusterNodeProcess, ClusterNodeProcess];
    const owners = await waitForBalance(engines, [a.nodeId, b.nodeId]);
    let nft = '';
    for (let i = 0; !nft; i++) if (owners.get(shardOf(`bench-turn-${i}`)) === a.nodeId) nft = `bench-turn-${i}`;
    const token = await signInProcess(a.url, engines.pg.url, nft);
    await deployLocalAt(a.url, token, nft);
    const rows: string[] = [];
    for (const [label, via] of [['through the owner', a], ['through a non-owner', b]] as const) {
      // A fresh conversation per run; history is trimmed to the token budget so turns stay alike.
      let cid: string | undefined;
      for (let i = 0; i < 20; i++) cid = (await turn(via.url, nft, token, cid)).cid; // warm up
      const firsts: number[] = [];
      const wholes: number[] = [];
      const ca = cpuMs(a.child.pid!);
      const cb = cpuMs(b.child.pid!);
      const t0 = performance.now();
      for (let i = 0; i < TURNS; i++) {
        const r = await turn(via.url, nft, token, cid);
        firsts.push(r.first);
        wholes.push(r.whole);
      }
      const secs = (performance.now() - t0) / 1000;
      const dA = cpuMs(a.child.pid!) - ca;
      const dB = cpuMs(b.child.pid!) - cb;
      rows.push(`| ${label} | ${(TURNS / secs).toFixed(0)}/s | ${pct(firsts, 50).toFixed(2)} / ${pct(firsts, 95).toFixed(2)} ms | ${pct(wholes, 50).toFixed(2)} / ${pct(wholes, 95).toFixed(2)} ms | ${((dA / TURNS) * 1000).toFixed(0)} us | ${((dB / TURNS) * 1000).toFixed(0)} us | ${(((dA + dB) / TURNS) * 1000).toFixed(0)} us |`);
    }
    console.log(`chat turns over SSE, one at a time, ${TURNS} per row, scripted model (36 chunks), load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
    console.log('| path | turns | first token p50 / p95 | whole turn p50 / p95 | CPU owner (A) per turn | CPU other (B) per turn | CPU both |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    await cluster.stop().catch(() => {});
    engines.stop();
  }
}

void main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
