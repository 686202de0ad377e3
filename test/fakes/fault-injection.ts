import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the provider fakes share: a node:http server on 127.0.0.1 (port 0) with a request
 * journal and faults injected per call (the network failures the adapters must survive).
 */

export type FaultKind =
  /** answers 429 with Retry-After, without processing */
  | '429'
  /** answers 500 without processing */
  | '500'
  /** processes the request, then answers 500 (the create happened, its answer says it did not) */
  | '500-after'
  /** never answers, never processes */
  | 'hang'
  /** processes the request, then never answers */
  | 'hang-after'
  /** processes the request, then drops the connection */
  | 'reset-after'
  /** processes the request, then answers after delayMs (a slow answer to a done deed) */
  | 'delay-after';

export interface Fault {
  method: string;
  /** matched against the path without the query: a string is a prefix */
  path: string | RegExp;
  kind: FaultKind;
  /** how many matching calls get the fault (default 1) */
  times?: number;
  retryAfterSec?: number;
  /** for 'delay-after' (default 500) */
  delayMs?: number;
}

export interface JournalEntry {
  method: string;
  path: string;
  query: URLSearchParams;
  status: number | 'hang' | 'reset';
  at: number;
  /**
   * the request body: parsed JSON, a multipart form's fields (files as text; filled in once
   * parsed, before the handler runs), else the text; undefined when empty
   */
  body?: unknown;
}

export interface FakeReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type FakeHandler = (req: http.IncomingMessage, url: URL, body: Buffer) => Promise<FakeReply> | FakeReply;

export interface FakeServer {
  url: string;
  journal: JournalEntry[];
  faults: Fault[];
  /** calls seen for a method and path prefix */
  calls(method: string, pathPrefix: string): number;
  close(): Promise<void>;
}

export async function startFakeServer(handler: FakeHandler, faults: Fault[] = []): Promise<FakeServer> {
  const journal: JournalEntry[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void serve(req, res, Buffer.concat(chunks));
    });
  });

  async function serve(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry: JournalEntry = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, status: 0, at: Date.now(), body: journalBody(body) };
    journal.push(entry);
    if (String(req.headers['content-type'] ?? '').startsWith('multipart/form-data')) entry.body = await formFields(req, body) ?? entry.body;
    const fault = takeFault(faults, entry.method, url.pathname);
    if (fault?.kind === 'hang') {
      entry.status = 'hang';
      return;
    }
    if (fault?.kind === '429') {
      entry.status = 429;
      send(res, { status: 429, body: { error: 'TooManyRequests', message: 'Rate limit exceeded' }, headers: { 'retry-after': String(fault.retryAfterSec ?? 1) } });
      return;
    }
    if (fault?.kind === '500') {
      entry.status = 500;
      send(res, { status: 500, body: { error: 'InternalServerError', message: 'upstream unavailable' } });
      return;
    }
    let reply: FakeReply;
    try {
      reply = await handler(req, url, body);
    } catch (e) {
      reply = { status: 500, body: { error: 'InternalServerError', message: (e as Error).message } };
    }
    if (fault?.kind === 'hang-after') {
      entry.status = 'hang';
      return;
    }
    if (fault?.kind === 'reset-after') {
      entry.status = 'reset';
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'delay-after') await sleep(fault.delayMs ?? 500);
    if (fault?.kind === '500-after') reply = { status: 500, body: { error: 'InternalServerError', message: 'transaction result unknown' } };
    entry.status = reply.status;
    send(res, reply);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    journal,
    faults,
    calls: (method, prefix) => journal.filter((j) => j.method === method && j.path.startsWith(prefix)).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections(); // hung requests included
        server.close(() => resolve());
      }),
  };
}

function takeFault(faults: Fault[], method: string, path: string): Fault | undefined {
  const i = faults.findIndex((f) => f.method === method && (typeof f.path === 'string' ? path.startsWith(f.path) : f.path.test(path)) && (f.times ?? 1) > 0);
  if (i < 0) return undefined;
  const f = faults[i]!;
  f.times = (f.times ?? 1) - 1;
  return f;
}

function send(res: http.ServerResponse, reply: FakeReply): void {
  const headers: Record<string, string> = { ...(reply.headers ?? {}) };
  let payload = '';
  if (reply.body !== undefined) {
    payload = JSON.stringify(reply.body);
    headers['content-type'] = 'application/json';
  }
  res.writeHead(reply.status, headers);
  res.end(payload);
}

async function formFields(req: http.IncomingMessage, body: Buffer): Promise<Record<string, string> | undefined> {
  try {
    const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': String(req.headers['content-type']) }, body }).formData();
    const fields: Record<string, string> = {};
    for (const [k, v] of form) fields[k] = typeof v === 'string' ? v : await v.text();
    return fields;
  } catch {
    return undefined;
  }
}

export function jsonBody(body: Buffer): any {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function journalBody(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  return jsonBody(body) ?? body.toString('utf8');
}
