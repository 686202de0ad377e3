import type { DeploySpec } from '../../../src/providers/provider.js';
import { ApiError } from '../../../src/errors.js';
import { toYaml } from '../yaml.js';

export const AGENT_PORT = 8080;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkNames(vars: Record<string, string>): void {
  for (const name of Object.keys(vars)) {
    if (!ENV_NAME.test(name)) throw new ApiError('INVALID_FIELD', `environment variable name "${name}" is not valid`, { field: 'env' });
  }
}

/**
 * The docker-compose file for the agent VM. Plain settings are written in; every secret appears
 * only as a ${NAME} reference that the VM fills from secrets_plaintext (its .env), so the
 * compose file (which SecretVM shows in its console and attestation) holds no secret.
 */
export function renderCompose(spec: DeploySpec, image: string): string {
  checkNames(spec.env);
  checkNames(spec.secrets);
  const environment: Record<string, string> = {};
  const plain: Record<string, string> = {
    ...spec.env,
    PORT: String(AGENT_PORT),
    PANTHERS_AGENT_NFT: spec.nftTokenId,
    PANTHERS_DEPLOYMENT_ID: spec.deploymentId,
  };
  // Compose interpolates "$" in values: a literal one is written "$$".
  for (const [k, v] of Object.entries(plain)) if (!(k in spec.secrets)) environment[k] = v.replace(/\$/g, '$$$$');
  for (const k of Object.keys(spec.secrets)) environment[k] = `\${${k}}`;
  return toYaml({
    services: {
      agent: {
        image,
        restart: 'unless-stopped',
        ports: [`${AGENT_PORT}:${AGENT_PORT}`],
        environment,
      },
    },
  });
}

/** The secrets as .env text (what SecretVM takes as secrets_plaintext). */
export function renderSecretsEnv(secrets: Record<string, string>): string {
  checkNames(secrets);
  return Object.entries(secrets)
    .map(([k, v]) => `${k}=${/^[A-Za-z0-9_./:@+,=-]*$/.test(v) ? v : JSON.stringify(v)}`)
    .join('\n') + (Object.keys(secrets).length ? '\n' : '');
}
