import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * Local stand-ins for the proxies in front of a remote agent, forwarding HTTP and WebSocket
 * upgrades to it with the headers the real ones set:
 *
 * - `nginx-ingress` (Akash): akash-network/provider@afc4dd7c cluster/kube/client_ingress.go makes one
 *   Ingress per lease hostname (class akash-ingress-class, rules only, no TLS section) served by
 *   kubernetes/ingress-nginx; its Gateway API mode (_docs/kustomize/nginx-gateway-fabric/
 *   gateway.yaml) has a single HTTP listener on port 80. The generated nginx.conf sets
 *   X-Real-IP $remote_addr, X-Forwarded-For $remote_addr (replacing what the client sent;
 *   use-forwarded-headers is off by default), X-Forwarded-Host $best_http_host,
 *   X-Forwarded-Port $pass_port, X-Forwarded-Proto/X-Forwarded-Scheme/X-Scheme
 *   $pass_access_scheme, X-Original-Forwarded-For $http_x_forwarded_for, X-Request-ID, and
 *   clears Proxy (the rendered ingress-nginx nginx.conf, as published in many public copies of
 *   its template output). TLS only when the provider gave the controller a (wildcard) certificate.
 * - `traefik` (SecretVM): the Traefik service of the compose file (as scrtlabs/secretvm-cli
 *   `vm create --tls` adds it, secretvm-cli@94f38b52), TLS on its websecure entrypoint.
 *   traefik/traefik pkg/middlewares/forwardedheaders/forwarded_header.go: with no trusted IPs
 *   (not `insecure`) the client's X-Forwarded-* and X-Real-Ip are deleted, then X-Real-Ip is the
 *   client, X-Forwarded-Proto https (wss for a WebSocket handshake), X-Forwarded-Port and
 *   -Host from the request, X-Forwarded-Server the hostname; its reverse proxy appends the
 *   client to X-Forwarded-For.
 */

export type IngressKind = 'nginx-ingress' | 'traefik';

export interface IngressOptions {
  kind: IngressKind;
  /** where the container is, e.g. http://127.0.0.1:PORT */
  target: string;
  /** key + cert: serve TLS (always for traefik; optional for nginx-ingress) */
  tls?: { key: string; cert: string };
}

export interface Ingress {
  kind: IngressKind;
  /** host:port, what a lease status / vmDomain reports */
  host: string;
  url: string;
  /** the headers of the last request forwarded (for assertions) */
  lastForwarded: () => Record<string, string> | undefined;
  setTarget(target: string): void;
  close(): Promise<void>;
}

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy']);
const FORWARDED = /^x-(forwarded-|real-ip$|original-forwarded-for$|scheme$|request-id$)/;

export async function startIngress(opts: IngressOptions): Promise<Ingress> {
  let target = new URL(opts.target);
  const tls = opts.tls;
  const tunnels = new Set<Duplex>();
  if (opts.kind === 'traefik' && !tls) throw new Error('the traefik ingress serves TLS: give it a certificate');
  let last: Record<string, string> | undefined;
  let port = 0;

  const forwardHeaders = (req: http.IncomingMessage, upgrade: boolean): Record<string, string> => {
    const client = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const scheme = tls ? 'https' : 'http';
    const host = req.headers.host ?? `127.0.0.1:${port}`;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || HOP.has(k) || FORWARDED.test(k)) continue;
      out[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    if (upgrade) {
      out.connection = 'upgrade';
      out.upgrade = String(req.headers.upgrade ?? 'websocket');
    }
    if (opts.kind === 'nginx-ingress') {
      out['x-request-id'] = randomBytes(16).toString('hex');
      out['x-real-ip'] = client;
      out['x-forwarded-for'] = client;
      out['x-forwarded-host'] = host;
      out['x-forwarded-port'] = String(port);
      out['x-forwarded-proto'] = scheme;
      out['x-forwarded-scheme'] = scheme;
      out['x-scheme'] = scheme;
      if (req.headers['x-forwarded-for']) out['x-original-forwarded-for'] = String(req.headers['x-forwarded-for']);
    } else {
      out['x-forwarded-for'] = client;
      out['x-forwarded-host'] = host;
      out['x-forwarded-port'] = String(port);
      out['x-forwarded-proto'] = upgrade ? (tls ? 'wss' : 'ws') : scheme;
      out['x-forwarded-server'] = 'traefik-fake';
      out['x-real-ip'] = client;
    }
    last = out;
    return out;
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const up = http.request({
      host: target.hostname, port: target.port, method: req.method, path: req.url, headers: forwardHeaders(req, false),
    }, (ures) => {
      const headers = { ...ures.headers };
      for (const h of HOP) delete headers[h];
      res.writeHead(ures.statusCode ?? 502, headers);
      ures.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
    });
    req.pipe(up);
  };

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    tunnels.add(socket);
    tunnels.add(upstream);
    socket.on('close', () => tunnels.delete(socket));
    upstream.on('close', () => tunnels.delete(upstream));
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    upstream.on('connect', () => {
      const headers = forwardHeaders(req, true);
      let head1 = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(headers)) head1 += `${k}: ${v}\r\n`;
      upstream.write(head1 + '\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
  };

  const server: http.Server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, onRequest) : http.createServer(onRequest);
  server.on('upgrade', onUpgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  const host = `127.0.0.1:${port}`;
  return {
    kind: opts.kind,
    host,
    url: `${tls ? 'https' : 'http'}://${host}`,
    lastForwarded: () => last,
    setTarget: (t) => {
      target = new URL(t);
    },
    close: () => new Promise<void>((resolve) => {
      for (const t of tunnels) t.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
