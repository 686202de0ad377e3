/**
 * The default public URL follows the address the server is bound to, so the origin written in
 * sign-in messages is the one a client on that address signs for (a wallet or viem's
 * validateSiweMessage compares the message's domain with the page's host). A wildcard bind
 * (0.0.0.0, ::) names no single host: `localhost` then.
 */
export function defaultPublicUrl(host: string, port: number): string {
  const h = host.trim();
  if (h === '' || h === '0.0.0.0' || h === '::' || h === '[::]') return `http://localhost:${port}`;
  return `http://${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${port}`;
}

/** 127.0.0.0/8 and ::1: agent sub-domains of such a host are served as `agent-N.localhost`. */
export function isLoopbackIp(hostname: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname) || hostname === '[::1]' || hostname === '::1';
}

export function isIpLiteral(hostname: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith('[');
}
