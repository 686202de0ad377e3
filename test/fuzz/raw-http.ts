import net from 'node:net';

/**
 * A minimal HTTP/1.1 client over a raw socket, so the fuzzer can send what fetch refuses to:
 * any method, bytes that are not UTF-8, a Content-Length that lies, a body dripped slowly or cut
 * short. Keeps one connection alive between requests (100,000 fresh connections would exhaust
 * the ephemeral ports) and opens a new one whenever the server closed the last.
 */
export interface RawRequest {
  method: string;
  /** path and query, sent as is */
  target: string;
  headers: [string, string][];
  body?: Buffer;
  /** whole: one write; slow: a few pieces with pauses; truncated: part of the body, then close */
  delivery: 'whole' | 'slow' | 'truncated';
  /** a body sent with Transfer-Encoding: chunked instead of Content-Length */
  chunked?: boolean;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export type RawOutcome =
  | { kind: 'response'; response: RawResponse }
  /** the server closed or reset the connection without a (complete) response */
  | { kind: 'closed'; partial: string }
  /** nothing within the deadline */
  | { kind: 'hang'; partial: string };

export class RawHttp {
  private socket: net.Socket | undefined;

  constructor(private readonly port: number, private readonly deadlineMs = 10_000) {}

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  async send(req: RawRequest): Promise<RawOutcome> {
    // A fresh connection for deliveries that spoil it.
    const fresh = req.delivery !== 'whole';
    const reused = !fresh && this.socket !== undefined && !this.socket.destroyed;
    const socket = fresh ? await this.connect() : reused ? this.socket! : (this.socket = await this.connect());
    let out: RawOutcome;
    try {
      out = await this.exchange(socket, req);
    } finally {
      if (fresh || socket.destroyed) socket.destroy();
      if (!fresh && socket.destroyed) this.socket = undefined;
    }
    // A kept-alive connection the server had already closed (after a 413, say) is not an answer
    // to this request: try once more on a new connection, as HTTP clients do.
    if (reused && out.kind === 'closed' && out.partial === '') return this.send(req);
    return out;
  }

  /** Sends bytes as they are on a fresh connection and reads what comes back. */
  async sendBytes(bytes: Buffer, pieces = 1): Promise<RawOutcome> {
    const socket = await this.connect();
    try {
      return await this.exchange(socket, { method: 'GET', target: '', headers: [], delivery: 'whole' }, bytes, pieces);
    } finally {
      socket.destroy();
    }
  }

  private connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: this.port });
      s.setNoDelay(true);
      s.once('connect', () => {
        s.removeListener('error', reject);
        s.on('error', () => undefined);
        resolve(s);
      });
      s.once('error', reject);
    });
  }

  private exchange(socket: net.Socket, req: RawRequest, bytes?: Buffer, pieces = 1): Promise<RawOutcome> {
    return new Promise((resolve) => {
      let buf = Buffer.alloc(0);
      let done = false;
      const finish = (o: RawOutcome) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.removeListener('close', onClose);
        if (o.kind !== 'response' || o.response.headers.connection === 'close') socket.destroy();
        resolve(o);
      };
      const timer = setTimeout(() => finish({ kind: 'hang', partial: buf.toString('latin1').slice(0, 300) }), this.deadlineMs);
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const r = parseResponse(buf, req.method === 'HEAD');
        if (r === 'bad') finish({ kind: 'closed', partial: 'unparseable response: ' + buf.toString('latin1').slice(0, 300) });
        else if (r) finish({ kind: 'response', response: r });
      };
      const onClose = () => {
        // A response without a length ends with the connection.
        const r = parseResponse(buf, req.method === 'HEAD', true);
        if (r && r !== 'bad') finish({ kind: 'response', response: r });
        else finish({ kind: 'closed', partial: buf.toString('latin1').slice(0, 300) });
      };
      socket.on('data', onData);
      socket.on('close', onClose);
      if (bytes) {
        const step = Math.ceil(bytes.length / pieces);
        void (async () => {
          for (let i = 0; i < bytes.length; i += step) {
            if (i) await new Promise((r) => setTimeout(r, 30));
            socket.write(bytes.subarray(i, i + step));
          }
        })();
      }
      else void write(socket, req).catch(() => undefined);
    });
  }
}

async function write(socket: net.Socket, req: RawRequest): Promise<void> {
  const body = req.body ?? Buffer.alloc(0);
  const lines = [`${req.method} ${req.target} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [k, v] of req.headers) lines.push(`${k}: ${v}`);
  const hasLength = req.headers.some(([k]) => k.toLowerCase() === 'content-length');
  let payload = body;
  if (req.chunked) {
    lines.push('Transfer-Encoding: chunked');
    // one chunk (none for an empty body), then the last-chunk
    payload = body.length
      ? Buffer.concat([Buffer.from(body.length.toString(16) + '\r\n'), body, Buffer.from('\r\n0\r\n\r\n')])
      : Buffer.from('0\r\n\r\n');
  } else if (!hasLength && (body.length || ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method))) {
    lines.push(`Content-Length: ${body.length}`);
  }
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  if (req.delivery === 'whole') {
    socket.write(Buffer.concat([head, payload]));
    return;
  }
  if (req.delivery === 'truncated') {
    // Promise the whole body, send part of it, then hang up.
    socket.write(Buffer.concat([head, payload.subarray(0, Math.floor(payload.length / 2))]));
    await new Promise((r) => setTimeout(r, 5));
    socket.end();
    return;
  }
  // slow: the head and the body in a few pieces, 20-40 ms apart
  const all = Buffer.concat([head, payload]);
  const pieces = 4;
  const step = Math.ceil(all.length / pieces);
  for (let i = 0; i < all.length; i += step) {
    if (socket.destroyed) return;
    socket.write(all.subarray(i, i + step));
    await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 20)));
  }
}

/** A complete response in buf, undefined when more bytes are needed, 'bad' when it is not HTTP. */
function parseResponse(buf: Buffer, head: boolean, eof = false): RawResponse | undefined | 'bad' {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return buf.length > 65_536 ? 'bad' : undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!);
  if (!m) return 'bad';
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const status = Number(m[1]);
  const rest = buf.subarray(end + 4);
  // 100 Continue (and other 1xx but 101) come before the real response.
  if (status >= 100 && status < 200 && status !== 101) return parseResponse(rest, head, eof);
  if (head || status === 204 || status === 304 || status === 101) return { status, headers, body: Buffer.alloc(0) };
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    return rest.length >= n ? { status, headers, body: rest.subarray(0, n) } : undefined;
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const nl = rest.indexOf('\r\n', at);
      if (nl < 0) return undefined;
      const size = parseInt(rest.subarray(at, nl).toString('latin1'), 16);
      if (Number.isNaN(size)) return 'bad';
      if (size === 0) return { status, headers, body: Buffer.concat(parts) };
      if (rest.length < nl + 2 + size + 2) return undefined;
      parts.push(rest.subarray(nl + 2, nl + 2 + size));
      at = nl + 2 + size + 2;
    }
  }
  return eof ? { status, headers, body: rest } : undefined;
}
