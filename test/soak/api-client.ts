import WebSocket from 'ws';
import { sseData } from '../../src/sdk/sse.js';

/**
 * The soak's HTTP/WS client: every call has a deadline (a hang is a finding, not a stuck soak),
 * and every answer passes through `observe`, which flags 5xx other than SERVICE_UNAVAILABLE.
 */
export interface Answer {
  status: number;
  body: any;
  text: string;
}

/** A request that got no answer (connection refused/reset by the crash, or our deadline). */
export class NoAnswer extends Error {
  constructor(readonly why: string, readonly hung: boolean) {
    super(why);
  }
}

export interface ClientHooks {
  /** every HTTP answer and every error frame; returns nothing, records violations */
  observe(what: string, status: number, code: string | undefined, text: string): void;
}

export class ApiClient {
  /** the servers to call; more than one (a cluster's nodes): each call goes to the next */
  bases: string[];
  private turn = 0;

  constructor(base: string, private readonly hooks: ClientHooks, private readonly deadlineMs = 20_000) {
    this.bases = [base];
  }

  get base(): string {
    return this.bases.length === 1 ? this.bases[0]! : this.bases[this.turn++ % this.bases.length]!;
  }

  set base(url: string) {
    this.bases = [url];
  }

  async call(method: string, path: string, opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const signal = AbortSignal.timeout(this.deadlineMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.base + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal });
      text = await res.text();
    } catch (e) {
      throw noAnswer(e, signal);
    }
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    this.hooks.observe(`${method} ${path.replace(/\?.*/, '')}`, res.status, body?.error?.code, text);
    return { status: res.status, body, text };
  }

  /** POST /chat with stream: true; resolves with the final SSE object (done: true) and the chunk text. */
  async chatSse(nft: string, token: string, body: Record<string, unknown>, extra: Record<string, string> = {}): Promise<{ status: number; final?: any; chunks: string; error?: any }> {
    const signal = AbortSignal.timeout(this.deadlineMs);
    const route = `POST /v1/agents/{nft}/chat (sse)`;
    try {
      const res = await fetch(`${this.base}/v1/agents/${nft}/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...extra },
        body: JSON.stringify({ ...body, stream: true }),
        signal,
      });
      if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        const text = await res.text();
        let parsed: any;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        this.hooks.observe(route, res.status, parsed?.error?.code, text);
        return { status: res.status, chunks: '', error: parsed?.error };
      }
      let chunks = '';
      let final: any;
      for await (const data of sseData(res.body!, signal)) {
        const ev = JSON.parse(data);
        if (ev.done) final = ev;
        else chunks += ev.content;
      }
      if (final?.error) this.hooks.observe(route + ' final frame', res.status, final.error.code, JSON.stringify(final));
      // A stream that ends without its final event is not acknowledged (the crash cut it).
      if (!final) throw new NoAnswer('SSE stream ended without a final event', false);
      return { status: res.status, final, chunks };
    } catch (e) {
      if (e instanceof NoAnswer) throw e;
      throw noAnswer(e, signal);
    }
  }
}

function noAnswer(e: unknown, signal: AbortSignal): NoAnswer {
  const hung = signal.aborted;
  const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
  return new NoAnswer(hung ? 'no answer within the deadline' : `no answer (${cause})`, hung);
}

/** A WS connection that records frames and lets a caller wait for one. */
export class WsClient {
  readonly frames: any[] = [];
  private waiters: { pred: (f: any) => boolean; resolve: (f: any) => void; reject: (e: Error) => void }[] = [];
  closed = false;

  private constructor(readonly ws: WebSocket, private readonly hooks: ClientHooks) {
    ws.on('message', (data) => {
      let f: any;
      try {
        f = JSON.parse(data.toString());
      } catch {
        this.hooks.observe('WS frame', 200, 'NOT_JSON', data.toString().slice(0, 200));
        return;
      }
      if (f.type === 'error') this.hooks.observe(`WS ${f.request_type ?? '?'}`, 200, f.error?.code, JSON.stringify(f));
      if (f.type === 'chat_chunk' && f.done && f.error) this.hooks.observe('WS chat_stream final frame', 200, f.error.code, JSON.stringify(f));
      if (this.frames.length < 2000) this.frames.push(f);
      for (const w of [...this.waiters]) {
        if (w.pred(f)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    });
    ws.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w.reject(new NoAnswer('socket closed', false));
    });
    ws.on('error', () => undefined);
  }

  static open(base: string, token: string, hooks: ClientHooks, ms = 10_000): Promise<WsClient> {
    const ws = new WebSocket(base.replace('http', 'ws') + '/ws?token=' + encodeURIComponent(token));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        ws.terminate();
        reject(new NoAnswer('WS open: no answer within the deadline', true));
      }, ms);
      ws.once('open', () => {
        clearTimeout(t);
        resolve(new WsClient(ws, hooks));
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(t);
        hooks.observe('WS upgrade', res.statusCode ?? 0, undefined, '');
        ws.terminate();
        reject(new NoAnswer(`WS upgrade answered ${res.statusCode}`, false));
      });
      ws.once('error', (e) => {
        clearTimeout(t);
        reject(new NoAnswer(`WS open failed (${(e as NodeJS.ErrnoException).code ?? e.message})`, false));
      });
    });
  }

  send(frame: object): void {
    if (!this.closed) this.ws.send(JSON.stringify(frame));
  }

  next(pred: (f: any) => boolean, ms = 20_000): Promise<any> {
    if (this.closed) return Promise.reject(new NoAnswer('socket closed', false));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new NoAnswer('WS: no frame within the deadline', true));
      }, ms);
      const done = (f: any) => {
        clearTimeout(t);
        resolve(f);
      };
      this.waiters.push({ pred, resolve: done, reject: (e) => { clearTimeout(t); reject(e); } });
    });
  }

  close(): void {
    this.ws.terminate();
  }
}
