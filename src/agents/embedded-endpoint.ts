import type { Config } from '../config.js';

/** The public URL of an embedded agent: the Host name agent-{nft}.<public host> (https in production). */
export function embeddedEndpointUrl(config: Config, nft: string): string {
  const u = new URL(config.publicUrl);
  const proto = config.env === 'production' ? 'https:' : u.protocol;
  return `${proto}//agent-${nft}.${u.host}`;
}
