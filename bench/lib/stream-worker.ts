import http from 'node:http';
import WebSocket from 'ws';
import { io as ioClient, type Socket } from 'socket.io-client';
import { LatencyHistogram } from './stats.js';

/**
 * A load worker process (forked by stream-load.ts, pinned to the load CPU): holds many streaming
 * chat clients, checks every chunk arrives in order, and records how late each chunk is against
 * its schedule. Driven by IPC commands so the harness can open, start, mark a window and report.
 */
export type Protocol = 'ws' | 'socketio' | 'sse';

export interface WorkerConfig {
  protocol: Protocol;
  /** http://127.0.0.1:PORT */
  base: string;
  token: string;
  nft: string;
  message: string;
  clients: number;
  /** expected chunk contents of one turn, in order */
  expected: string[];
  delayMs: number;
  /** lateness of chunk i = arrival - (sent + offsetMs + i * delayMs); offsetMs from a calibration turn */
  offsetMs: number;
  /** start a new turn when one ends (a continuous stream per client) */
  loop: boolean;
}

export type Command =
  | { cmd: 'open'; config: WorkerConfig }
  | { cmd: 'stream' }
  | { cmd: 'mark' }
  | { cmd: 'report' }
  | { cmd: 'close' };

export interface WindowReport {
  /** clients with an open connection now */
  open: number;
  /** clients that received at least one chunk in the window */
  active: number;
  chunks: number;
  turns: number;
  /** chunks whose content or position did not match the script, turns that ended short */
  outOfOrder: number;
  shortTurns: number;
  errors: number;
  firstError?: string;
  windowMs: number;
  latency: [number, number][];
  cpuMs: number;
}

export type WorkerEvent = { ev: 'opened'; ok: number; failed: number; firstError?: string } | { ev: 'report'; report: WindowReport } | { ev: 'streaming' };

interface Client {
  open: boolean;
  idx: number;
  sentAt: number;
  chunksInWindow: number;
  start(): void;
  close(): void;
}

let cfg: WorkerConfig;
const clients: Client[] = [];
let hist = new LatencyHistogram();
let chunks = 0;
let turns = 0;
let outOfOrder = 0;
let shortTurns = 0;
let errors = 0;
let firstError: string | undefined;
let windowStart = performance.now();
let cpuStart = process.cpuUsage();
let streaming = false;

function fail(msg: string): void {
  errors++;
  firstError ??= msg;
}

function onChunk(c: Client, content: string): void {
  const now = performance.now();
  if (cfg.expected[c.idx] !== content) outOfOrder++;
  hist.record(now - (c.sentAt + cfg.offsetMs + c.idx * cfg.delayMs));
  c.idx++;
  c.chunksInWindow++;
  chunks++;
}

function onDone(c: Client): void {
  if (c.idx !== cfg.expected.length) shortTurns++;
  turns++;
  if (cfg.loop && streaming && c.open) c.start();
}

function wsUrl(): string {
  return `${cfg.base.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(cfg.token)}`;
}

function openWs(): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(), { perMessageDeflate: false });
    const request = JSON.stringify({ type: 'chat_stream', nft_token_id: cfg.nft, message: cfg.message });
    const c: Client = {
      open: false, idx: 0, sentAt: 0, chunksInWindow: 0,
      start() {
        c.idx = 0;
        c.sentAt = performance.now();
        ws.send(request);
      },
      close() {
        c.open = false;
        ws.terminate();
      },
    };
    ws.on('open', () => {
      c.open = true;
      resolve(c);
    });
    ws.on('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('error', (e) => (c.open ? fail(e.message) : reject(e)));
    ws.on('close', () => {
      if (c.open && streaming) fail('connection closed by the server');
      c.open = false;
    });
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { type: string; content?: string; done?: boolean; error?: unknown };
      if (f.type === 'chat_chunk') {
        if (f.done) onDone(c);
        else onChunk(c, f.content ?? '');
      } else if (f.type === 'error') fail(`error frame: ${JSON.stringify(f.error)}`);
    });
  });
}

function openSocketIo(): Promise<Client> {
  return new Promise((resolve, reject) => {
    const s: Socket = ioClient(cfg.base, { transports: ['websocket'], auth: { token: cfg.token }, reconnection: false, timeout: 20_000 });
    const request = { nft_token_id: cfg.nft, message: cfg.message };
    const c: Client = {
      open: false, idx: 0, sentAt: 0, chunksInWindow: 0,
      start() {
        c.idx = 0;
        c.sentAt = performance.now();
        s.emit('chat_stream', request);
      },
      close() {
        c.open = false;
        s.disconnect();
      },
    };
    s.on('connect', () => {
      c.open = true;
      resolve(c);
    });
    s.on('connect_error', (e) => (c.open ? fail(e.message) : reject(e)));
    s.on('disconnect', (why) => {
      if (c.open && streaming) fail(`disconnected: ${why}`);
      c.open = false;
    });
    s.on('chat_chunk', (f: { content?: string; done?: boolean }) => {
      if (f.done) onDone(c);
      else onChunk(c, f.content ?? '');
    });
  });
}

/** SSE: one keep-alive connection per client, a POST per turn, `data:` events parsed as they come. */
function openSse(): Promise<Client> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const u = new URL(`${cfg.base}/v1/agents/${cfg.nft}/chat`);
  const body = JSON.stringify({ message: cfg.message, stream: true });
  const c: Client = {
    open: true, idx: 0, sentAt: 0, chunksInWindow: 0,
    start() {
      c.idx = 0;
      c.sentAt = performance.now();
      const req = http.request(
        { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${cfg.token}`, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          if (res.statusCode !== 200) {
            fail(`chat answered ${res.statusCode}`);
            res.resume();
            return;
          }
          res.setEncoding('utf8');
          let buf = '';
          let ended = false;
          res.on('data', (d: string) => {
            buf += d;
            let i: number;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const event = buf.slice(0, i);
              buf = buf.slice(i + 2);
              const line = event.split('\n').find((l) => l.startsWith('data:'));
              if (!line) continue;
              const f = JSON.parse(line.slice(5)) as { content?: string; done?: boolean };
              if (f.done) {
                ended = true;
                onDone(c);
              } else onChunk(c, f.content ?? '');
            }
          });
          res.on('end', () => {
            if (!ended && c.open && streaming) fail('stream ended without done');
          });
        },
      );
      req.on('error', (e) => {
        if (c.open && streaming) fail(e.message);
      });
      req.end(body);
    },
    close() {
      c.open = false;
      agent.destroy();
    },
  };
  return Promise.resolve(c);
}

async function openAll(): Promise<WorkerEvent> {
  const open = cfg.protocol === 'ws' ? openWs : cfg.protocol === 'socketio' ? openSocketIo : openSse;
  let ok = 0;
  let failed = 0;
  let err: string | undefined;
  // At most 200 handshakes in flight: a burst of thousands only measures the accept queue.
  let next = 0;
  const lane = async () => {
    while (next < cfg.clients) {
      next++;
      try {
        clients.push(await open());
        ok++;
      } catch (e) {
        failed++;
        err ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(200, cfg.clients) }, lane));
  return { ev: 'opened', ok, failed, firstError: err };
}

function resetWindow(): void {
  hist = new LatencyHistogram();
  chunks = turns = outOfOrder = shortTurns = errors = 0;
  firstError = undefined;
  for (const c of clients) c.chunksInWindow = 0;
  windowStart = performance.now();
  cpuStart = process.cpuUsage();
}

function report(): WindowReport {
  const cpu = process.cpuUsage(cpuStart);
  return {
    open: clients.filter((c) => c.open).length,
    active: clients.filter((c) => c.chunksInWindow > 0).length,
    chunks, turns, outOfOrder, shortTurns, errors, firstError,
    windowMs: performance.now() - windowStart,
    latency: hist.toSparse(),
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

const send = (e: WorkerEvent) => process.send!(e);

process.on('message', (m: Command) => {
  switch (m.cmd) {
    case 'open':
      cfg = m.config;
      openAll().then(send);
      break;
    case 'stream':
      streaming = true;
      resetWindow();
      // Spread the first requests over one chunk interval so turns do not all tick together.
      clients.forEach((c, i) => setTimeout(() => c.open && c.start(), (i / clients.length) * Math.max(cfg.delayMs, 1)));
      send({ ev: 'streaming' });
      break;
    case 'mark':
      resetWindow();
      break;
    case 'report':
      send({ ev: 'report', report: report() });
      break;
    case 'close':
      streaming = false;
      for (const c of clients) c.close();
      setTimeout(() => process.exit(0), 50);
      break;
  }
});
process.on('disconnect', () => process.exit(0));
