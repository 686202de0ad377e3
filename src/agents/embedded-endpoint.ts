import type { Config } from '../config.js';
import { isIpLiteral, isLoopbackIp } from '../server/public-url.js';

/**
 * The public URL of an embedded agent: the Host name agent-{nft}.<public host> (https in
 * production). An IP has no sub-domains: loopback agents are agent-N.localhost, others are
 * path-addressed.
 */
export function embeddedEndpointUrl(config: Config, nft: string): string {
  const u = new URL(config.publicUrl);
  const proto = config.env === 'production' ? 'https:' : u.protocol;
  if (isLoopbackIp(u.hostname)) return `${proto}//agent-${nft}.localhost${u.port ? ':' + u.port : ''}`;
  if (isIpLiteral(u.hostname)) return `${proto}//${u.host}/v1/agents/${nft}`;
  return `${proto}//agent-${nft}.${u.host}`;
}
