import type { Config } from '../../../src/config.js';
import type { Logger } from '../../../src/logger.js';
import { SecretVmProvider, type SecretVmProviderOptions } from './secretvm-provider.js';

export { SecretVmProvider, type SecretVmProviderOptions } from './secretvm-provider.js';
export { renderCompose, renderSecretsEnv } from './compose.js';
export { mapVmStatus } from './secretvm-api.js';

/** The SecretVM provider adapter, for the provider registry. */
export function createSecretVmProvider(config: Config, log: Logger, opts?: SecretVmProviderOptions): SecretVmProvider {
  return new SecretVmProvider(config, log, opts);
}
