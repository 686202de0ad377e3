import type { Config } from '../config.js';

/**
 * Whether a request arrived over HTTPS (this build of uWS has no TLS: it is terminated by a
 * proxy), one rule for HTTP requests and WebSocket upgrades:
 * - ingress `http` (Akash): the provider's HTTP ingress is the only way in; it serves plain
 *   HTTP unless the provider added TLS, the deployment's endpoint_url says which, and the tokens
 *   sent there are agent-scoped and short-lived;
 * - ingress `tls` (SecretVM): only the in-VM Traefik reaches us; it says `https`, or `wss` for a
 *   WebSocket handshake (traefik pkg/middlewares/forwardedheaders/forwarded_header.go);
 * - otherwise `X-Forwarded-Proto: https` from a PANTHERS_TRUSTED_PROXIES address.
 */
export function arrivedOverHttps(config: Pick<Config, 'ingress' | 'trustedProxies'>, peer: string, forwardedProto: string | undefined): boolean {
  if (config.ingress === 'http') return true;
  if (config.ingress === 'tls') return forwardedProto === 'https' || forwardedProto === 'wss';
  return forwardedProto === 'https' && config.trustedProxies.includes(peer);
}
