import type { Config } from '../../../src/config.js';
import type { Logger } from '../../../src/logger.js';
import { AkashProvider, type AkashProviderOptions } from './akash-provider.js';

export { AkashProvider, type AkashProviderOptions } from './akash-provider.js';
export { renderSdl, deploymentMarker, AKASH_SERVICE } from './sdl.js';

/** The Akash provider adapter, for the provider registry. */
export function createAkashProvider(config: Config, log: Logger, opts?: AkashProviderOptions): AkashProvider {
  return new AkashProvider(config, log, opts);
}
