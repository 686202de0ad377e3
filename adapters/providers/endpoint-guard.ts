import { importModule } from '../../src/dynamic-import.js';
import dns from 'node:dns';
import net from 'node:net';
import type { LookupFunction } from 'node:net';
import { ApiError } from '../../src/errors.js';

/**
 * The orchestrator fetches URLs that a provider reported (an Akash lease URI, a SecretVM
 * domain): a provider could point them at our own network (SSRF). Unless the operator set
 * PANTHERS_ALLOW_PRIVATE_ENDPOINTS, such URLs must resolve to public addresses only; the check
 * happens in the socket's own DNS lookup, so a name that resolves differently the second time
 * (DNS rebinding) is caught where the connection is made.
 */

const BLOCKED = new net.BlockList();
for (const [addr, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16],
  ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) BLOCKED.addSubnet(addr, prefix, 'ipv4');
for (const [addr, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 32],
  ['2001:db8::', 32], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) BLOCKED.addSubnet(addr, prefix, 'ipv6');

/** True for loopback, private, link-local, CGNAT, documentation, multicast and reserved addresses. */
export function isPrivateAddress(ip: string): boolean {
  const family = net.isIP(ip);
  if (family === 0) return true;
  if (family === 6) {
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms are judged by their IPv4 address.
    const m = /^::(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    if (m) return BLOCKED.check(m[1]!, 'ipv4');
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
    if (hex) {
      const a = parseInt(hex[1]!, 16);
      const b = parseInt(hex[2]!, 16);
      return BLOCKED.check(`${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`, 'ipv4');
    }
    return BLOCKED.check(ip, 'ipv6');
  }
  return BLOCKED.check(ip, 'ipv4');
}

export class PrivateEndpointError extends Error {
  readonly code = 'EPRIVATE';
  constructor(readonly host: string, readonly address: string) {
    super(`${host} resolves to ${address}, a private or loopback address`);
    this.name = 'PrivateEndpointError';
  }
}

/** A DNS lookup for sockets that refuses non-public answers. */
const publicOnlyLookup = (blocked: (ip: string) => boolean): LookupFunction => (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return (callback as (e: Error) => void)(err);
    const list = addresses as dns.LookupAddress[];
    const bad = list.find((a) => blocked(a.address));
    if (bad || list.length === 0) {
      return (callback as (e: Error) => void)(new PrivateEndpointError(hostname, bad?.address ?? 'nothing'));
    }
    if ((options as dns.LookupOptions).all) return (callback as (e: null, a: dns.LookupAddress[]) => void)(null, list);
    return callback(null, list[0]!.address, list[0]!.family);
  });
};

function hostOf(u: URL): string {
  return u.hostname.replace(/^\[|\]$/g, '');
}

/**
 * Refuses a provider-reported endpoint that is not an http(s) URL or that resolves to a private
 * address (unless allowed). Throws an ApiError the deployment fails with.
 */
export async function assertPublicEndpoint(endpointUrl: string, allowPrivate: boolean, provider: string): Promise<void> {
  let u: URL;
  try {
    u = new URL(endpointUrl);
  } catch {
    throw new ApiError('SERVICE_UNAVAILABLE', `${provider} reported an endpoint that is not a URL`, { provider, reason: 'bad_endpoint' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:' || u.username || u.password) {
    throw new ApiError('SERVICE_UNAVAILABLE', `${provider} reported an endpoint that is not a plain http(s) URL`, { provider, reason: 'bad_endpoint' });
  }
  if (allowPrivate) return;
  const host = hostOf(u);
  let addresses: string[];
  if (net.isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await dns.promises.lookup(host, { all: true })).map((a) => a.address);
    } catch (e) {
      // A name that does not resolve yet is not refused here: the health check will say so.
      return void e;
    }
  }
  const bad = addresses.find(isPrivateAddress);
  if (bad) {
    throw new ApiError(
      'SERVICE_UNAVAILABLE',
      `${provider} reported the endpoint ${u.host}, which resolves to a private or loopback address (${bad}); set PANTHERS_ALLOW_PRIVATE_ENDPOINTS=true only for a private cloud or tests`,
      { provider, reason: 'private_endpoint' },
    );
  }
}

export interface SafeGetOptions {
  allowPrivate: boolean;
  timeoutMs: number;
  /** bytes of body read at most; the rest is not read (the socket is destroyed) */
  maxBytes: number;
  /** redirects followed at most, each checked like the first URL (default 3) */
  maxRedirects?: number;
  signal?: AbortSignal;
  /** which addresses are refused (default isPrivateAddress; tests narrow it) */
  blocked?: (ip: string) => boolean;
}

export interface SafeGetResult {
  status: number;
  body: Buffer;
  truncated: boolean;
  url: string;
}

/**
 * GET with the SSRF rules: public addresses only (checked at connect time), redirects followed
 * only to http(s) URLs that pass the same check, at most maxBytes of body read, one deadline
 * for the whole exchange.
 */
export async function safeGet(url: string, opts: SafeGetOptions): Promise<SafeGetResult> {
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new Error(`refusing to fetch a ${current.protocol} URL`);
    const res = await getOnce(current, opts, signal);
    if (res.status >= 300 && res.status < 400 && res.location !== undefined) {
      if (hop >= (opts.maxRedirects ?? 3)) throw new Error(`more than ${opts.maxRedirects ?? 3} redirects`);
      current = new URL(res.location, current);
      continue;
    }
    return { status: res.status, body: res.body, truncated: res.truncated, url: current.toString() };
  }
}

async function getOnce(u: URL, opts: SafeGetOptions, signal: AbortSignal): Promise<{ status: number; body: Buffer; truncated: boolean; location?: string }> {
  // Loaded on first use: a server's start needs neither (node:http + node:https, ~6 ms of CPU).
  const mod = u.protocol === 'https:' ? (await importModule<{ default: typeof import('node:https') }>('node:https')).default : (await importModule<{ default: typeof import('node:http') }>('node:http')).default;
  return new Promise((resolve, reject) => {
    // A literal IP never goes through the lookup: it is checked here, before any connection.
    const host = hostOf(u);
    const blocked = opts.blocked ?? isPrivateAddress;
    if (!opts.allowPrivate && net.isIP(host) && blocked(host)) {
      reject(new PrivateEndpointError(host, host));
      return;
    }
    const req = mod.request(u, {
      method: 'GET',
      signal,
      // A fresh connection each time: a pooled socket would skip the lookup check.
      agent: false,
      headers: { accept: 'application/json', 'user-agent': 'secret-panthers-health' },
      ...(opts.allowPrivate ? {} : { lookup: publicOnlyLookup(blocked) }),
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      const location = typeof res.headers.location === 'string' ? res.headers.location : undefined;
      res.on('data', (c: Buffer) => {
        if (truncated) return;
        const room = opts.maxBytes - size;
        if (c.length > room) {
          chunks.push(c.subarray(0, room));
          size = opts.maxBytes;
          truncated = true;
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), truncated, location });
          res.destroy();
          return;
        }
        chunks.push(c);
        size += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), truncated, location }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
