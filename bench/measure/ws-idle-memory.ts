import WebSocket from 'ws';
import { detectTools } from '../lib/tools.js';
import { startProject, tempDir } from '../lib/servers.js';
import { rssMb, sleep } from '../lib/proc.js';
import { signIn } from '../lib/project-session.js';

/**
 * Memory per idle WebSocket: RSS of a real `panthers serve` process before and after N signed-in
 * idle sockets (the clients live in this process, not the server's).
 *   node dist/bench/measure/ws-idle-memory.js [--sockets=2000]
 */
const arg = process.argv.find((a) => a.startsWith('--sockets='));
const N = arg ? Number(arg.slice('--sockets='.length)) : 2000;

async function main(): Promise<void> {
  const tools = detectTools();
  const dir = tempDir('panthers-wsmem-');
  const target = await startProject(tools, { dataDir: dir, delayMs: 0 });
  const sockets: WebSocket[] = [];
  try {
    const s = await signIn(target, dir, '4343');
    const url = `${target.url.replace('http', 'ws')}/ws?token=${encodeURIComponent(s.token)}`;
    // One socket first: the lazily built parts (WS context, topic tree) are not per-socket cost.
    const open = () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
    sockets.push(await open());
    await sleep(1500);
    const before = rssMb(target.proc.pid);
    for (let i = 1; i < N; i += 100) {
      sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, N - i) }, open))));
    }
    await sleep(3000);
    const after = rssMb(target.proc.pid);
    const per = ((after - before) * 1024 * 1024) / (N - 1);
    console.log(JSON.stringify({ sockets: N, rss_before_mb: +before.toFixed(1), rss_after_mb: +after.toFixed(1), bytes_per_idle_socket: Math.round(per) }));
  } finally {
    for (const ws of sockets) ws.terminate();
    await target.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
