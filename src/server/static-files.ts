import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { HttpResponse } from './uws.js';
import { STATUS_LINES } from './status-lines.js';

/**
 * The web console's files (built by `npm run build` into dist/web), served from memory by the
 * same process: `/` is the page (revalidated on each load: `no-cache` + ETag), `/assets/*` are
 * content-hashed (cached for a year, `immutable`). Every file is read once at start with the
 * `.br` and `.gz` copies the build wrote beside it, so a request costs a Map lookup and one
 * write: no disk, no compression on the request path.
 */

interface Variant {
  body: Buffer;
  encoding: 'br' | 'gzip' | undefined;
}

interface StaticFile {
  type: string;
  etag: string;
  cache: string;
  identity: Variant;
  br: Variant | undefined;
  gzip: Variant | undefined;
  /** The console page gets the strict CSP; assets are not documents and need none. */
  page: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The console's Content-Security-Policy: scripts and styles from this origin only (no inline
 * script, no eval), data: images for the icons EIP-6963 wallets announce, fetch and WebSocket to
 * this origin only ('self' covers ws:/wss: of the same host in CSP Level 3), nothing framed,
 * no forms posted anywhere, no <base> rewriting.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Where `npm run build` puts the console: dist/web, beside dist/src. */
export function defaultConsoleDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
}

export class StaticFiles {
  private readonly files = new Map<string, StaticFile>();

  /** Loads the built console; an absent directory leaves the handler empty (and `/` says so). */
  constructor(readonly dir: string = defaultConsoleDir()) {
    if (!fs.existsSync(path.join(dir, 'index.html'))) return;
    for (const rel of walk(dir)) {
      if (rel.endsWith('.br') || rel.endsWith('.gz') || rel.endsWith('.map') || rel === 'meta.json') continue;
      const abs = path.join(dir, rel);
      const body = fs.readFileSync(abs);
      const ext = path.extname(rel);
      const isPage = rel === 'index.html';
      const file: StaticFile = {
        type: TYPES[ext] ?? 'application/octet-stream',
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
        // Hashed asset names change with their content: cache them for good. The page is
        // revalidated each time so a new build is picked up at the next load.
        cache: isPage ? 'no-cache' : 'public, max-age=31536000, immutable',
        identity: { body, encoding: undefined },
        br: readVariant(abs + '.br', 'br', body.length),
        gzip: readVariant(abs + '.gz', 'gzip', body.length),
        page: isPage,
      };
      this.files.set(isPage ? '/' : '/' + rel.split(path.sep).join('/'), file);
    }
  }

  get loaded(): boolean {
    return this.files.has('/');
  }

  /** True for the paths this handler answers (GET/HEAD of `/`, `/index.html` and `/assets/*`). */
  handles(method: string, url: string): boolean {
    if (method !== 'GET' && method !== 'HEAD') return false;
    return url === '/' || url === '/index.html' || url.startsWith('/assets/');
  }

  /**
   * Writes the answer for `url` (a path `handles` accepted). Returns the status written.
   * `headers` are the request's accept-encoding and if-none-match.
   */
  serve(res: HttpResponse, method: string, url: string, acceptEncoding: string, ifNoneMatch: string, requestId: string, production: boolean): number {
    const file = this.files.get(url === '/index.html' ? '/' : url);
    let status = 200;
    res.cork(() => {
      if (!file) {
        status = 404;
        const body = JSON.stringify({
          error: url === '/' || url === '/index.html'
            ? { code: 'NOT_FOUND', message: 'The web console is not built: run `npm run build`', details: { path: url } }
            : { code: 'NOT_FOUND', message: `No console asset ${url}`, details: { path: url } },
        });
        res.writeStatus(STATUS_LINES[404]!);
        res.writeHeader('X-Request-Id', requestId);
        res.writeHeader('Content-Type', 'application/json; charset=utf-8');
        res.writeHeader('Cache-Control', 'no-store');
        res.writeHeader('X-Content-Type-Options', 'nosniff');
        res.end(body);
        return;
      }
      const notModified = ifNoneMatch !== '' && ifNoneMatch.split(',').some((t) => t.trim() === file.etag);
      const v = notModified ? file.identity : pick(file, acceptEncoding);
      status = notModified ? 304 : 200;
      res.writeStatus(STATUS_LINES[status] ?? String(status));
      res.writeHeader('X-Request-Id', requestId);
      res.writeHeader('Content-Type', file.type);
      res.writeHeader('Cache-Control', file.cache);
      res.writeHeader('ETag', file.etag);
      res.writeHeader('Vary', 'Accept-Encoding');
      if (v.encoding) res.writeHeader('Content-Encoding', v.encoding);
      res.writeHeader('X-Content-Type-Options', 'nosniff');
      res.writeHeader('Cross-Origin-Resource-Policy', 'same-origin');
      if (file.page) {
        res.writeHeader('Content-Security-Policy', CONSOLE_CSP);
        res.writeHeader('X-Frame-Options', 'DENY');
        res.writeHeader('Referrer-Policy', 'no-referrer');
        res.writeHeader('Cross-Origin-Opener-Policy', 'same-origin');
        res.writeHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=()');
      }
      if (production) res.writeHeader('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
      if (notModified) res.endWithoutBody(0);
      else if (method === 'HEAD') res.endWithoutBody(v.body.length);
      else res.end(v.body);
    });
    return status;
  }
}

function pick(file: StaticFile, acceptEncoding: string): Variant {
  if (!acceptEncoding) return file.identity;
  if (file.br && /\bbr\b/.test(acceptEncoding)) return file.br;
  if (file.gzip && /\bgzip\b/.test(acceptEncoding)) return file.gzip;
  return file.identity;
}

function readVariant(p: string, encoding: 'br' | 'gzip', originalSize: number): Variant | undefined {
  if (!fs.existsSync(p)) return undefined;
  const body = fs.readFileSync(p);
  // A compressed copy that is not smaller is not worth a Content-Encoding.
  return body.length < originalSize ? { body, encoding } : undefined;
}

function walk(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? path.join(prefix, e.name) : e.name;
    if (e.isDirectory()) out.push(...walk(dir, rel));
    else out.push(rel);
  }
  return out;
}
