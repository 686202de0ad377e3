import { importModule } from '../dynamic-import.js';
import { PanthersError } from './errors.js';

/** The part of the WebSocket API the SDK uses: the browser's, Node 22's global, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

/** Frames buffered for a reader that has fallen behind; past it the socket is closed. */
const MAX_QUEUED_FRAMES = 10_000;

/**
 * The global WebSocket when there is one (browsers, Node >= 22), else the `ws` package, loaded
 * only then (Node 20 has no global WebSocket).
 */
export async function defaultWebSocketFactory(): Promise<WebSocketFactory> {
  const Global = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (typeof Global === 'function') return (url) => new Global(url);
  // A computed specifier keeps browser bundlers from pulling in the Node-only package.
  const name = 'ws';
  let mod: { default?: unknown; WebSocket?: unknown };
  try {
    mod = await importModule<typeof mod>(name);
  } catch (e) {
    throw new PanthersError('NETWORK_ERROR', 'No WebSocket implementation: this runtime has no global WebSocket and the `ws` package is not installed', { cause: e });
  }
  const Ctor = (mod.WebSocket ?? mod.default) as new (url: string) => WebSocketLike;
  return (url) => new Ctor(url);
}

export type Frame = { type: string } & Record<string, unknown>;

/**
 * A WebSocket read as an async sequence of JSON frames. `next()` resolves undefined once the
 * socket is closed; `closeCode` then says why (4001: the access token expired).
 */
export class FrameSocket {
  private readonly queue: Frame[] = [];
  private waiter: ((f: Frame | undefined) => void) | undefined;
  private closed = false;
  closeCode = 0;
  closeReason = '';

  private constructor(private readonly ws: WebSocketLike) {
    ws.onmessage = (ev) => {
      let frame: Frame;
      try {
        const text = typeof ev.data === 'string' ? ev.data : new TextDecoder().decode(ev.data as Uint8Array);
        frame = JSON.parse(text) as Frame;
      } catch {
        return; // not a JSON frame of the API: nothing to give the reader
      }
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(frame);
      } else if (this.queue.push(frame) > MAX_QUEUED_FRAMES) {
        this.close(1008, 'reader too slow');
      }
    };
    ws.onclose = (ev) => this.onClosed(ev.code, ev.reason);
  }

  /** Opens `url` and resolves once connected. A refused upgrade (401) rejects with UNAUTHORIZED. */
  static open(factory: WebSocketFactory, url: string, signal?: AbortSignal): Promise<FrameSocket> {
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = factory(url);
      } catch (e) {
        return reject(new PanthersError('NETWORK_ERROR', `Cannot open ${redact(url)}: ${(e as Error).message}`, { cause: e }));
      }
      const sock = new FrameSocket(ws);
      let settled = false;
      const onAbort = () => {
        ws.close(1000, 'aborted');
        fail(new PanthersError('NETWORK_ERROR', 'Aborted', { cause: signal?.reason }));
      };
      const fail = (e: PanthersError) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        reject(e);
      };
      ws.onerror = (ev) => {
        const msg = (ev as { message?: string; error?: Error }).message ?? (ev as { error?: Error }).error?.message ?? 'connection failed';
        // `ws` (Node) reports a refused upgrade as "Unexpected server response: 401".
        const status = /\b(\d{3})\b/.exec(msg)?.[1];
        if (status === '401') fail(new PanthersError('UNAUTHORIZED', 'The WebSocket upgrade was refused: the access token is missing, invalid or expired', { status: 401 }));
        else fail(new PanthersError('NETWORK_ERROR', `WebSocket to ${redact(url)} failed: ${msg}`, { status: status ? Number(status) : 0 }));
      };
      ws.onopen = () => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        ws.onerror = () => {};
        resolve(sock);
      };
      const closeBefore = ws.onclose;
      ws.onclose = (ev) => {
        closeBefore?.(ev);
        fail(new PanthersError('NETWORK_ERROR', `WebSocket closed before it opened (${ev.code})`));
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  send(frame: Record<string, unknown>): void {
    if (this.closed) throw new PanthersError('NETWORK_ERROR', 'The WebSocket is closed');
    this.ws.send(JSON.stringify(frame));
  }

  /** The next frame, or undefined once the socket has closed and every frame was read. */
  next(): Promise<Frame | undefined> {
    const f = this.queue.shift();
    if (f) return Promise.resolve(f);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((r) => (this.waiter = r));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(code = 1000, reason = ''): void {
    if (!this.closed && this.ws.readyState <= 1) this.ws.close(code, reason);
    this.onClosed(code, reason);
  }

  private onClosed(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    this.closeReason = reason;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
  }
}

/** The socket URL without its token, for messages. */
function redact(url: string): string {
  return url.replace(/([?&]token=)[^&]*/, '$1…');
}
