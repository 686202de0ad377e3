import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { tempDir } from './server.js';

/**
 * A throwaway certificate authority and a certificate for 127.0.0.1/localhost, made with the
 * openssl CLI (Debian's openssl package): what a provider's ingress would present, signed by a
 * CA that only the processes of a test trust (NODE_EXTRA_CA_CERTS / an explicit `ca`).
 */
export interface TestTls {
  caFile: string;
  ca: string;
  key: string;
  cert: string;
}

let made: TestTls | undefined;

export function testTls(): TestTls {
  if (made) return made;
  const dir = tempDir('panthers-tls-');
  const f = (n: string) => path.join(dir, n);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=Panthers Test CA', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('leaf.key'), '-out', f('leaf.csr')]);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('leaf.pem')]);
  made = { caFile: f('ca.pem'), ca: fs.readFileSync(f('ca.pem'), 'utf8'), key: fs.readFileSync(f('leaf.key'), 'utf8'), cert: fs.readFileSync(f('leaf.pem'), 'utf8') };
  return made;
}

export interface CaResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: any;
  /** ms from sending to the first body byte that carried a `"type":"token"`/`chunk` SSE event */
  firstEventMs?: number;
}

/**
 * One HTTP(S) request with an explicit CA (fetch has no per-call CA in Node 20), the body read
 * whole; onData sees each chunk as it arrives (to time a stream).
 */
export function caRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: unknown; ca?: string; onData?: (chunk: string, ms: number) => void } = {}): Promise<CaResponse> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method: opts.method ?? 'GET', headers, ca: opts.ca, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        opts.onData?.(c, performance.now() - started);
      });
      res.on('end', () => {
        let body: any;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`${opts.method ?? 'GET'} ${url}: no answer in 20 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}
