import { ApiError } from '../../../src/errors.js';
import type { Config } from '../../../src/config.js';
import type { DeploySpec } from '../../../src/providers/provider.js';
import { toYaml, type YamlValue } from '../yaml.js';

/** The service name in the SDL; the lease status reports the agent's URI under it. */
export const AKASH_SERVICE = 'agent';
export const AGENT_PORT = 8080;
/** Where the image keeps its SQLite file and signing key (the Dockerfile's PANTHERS_DATA_DIR). */
export const AGENT_DATA_DIR = '/app/data';
/** The SDL storage entry mounted at the data dir. */
export const DATA_VOLUME = 'data';
/** Ephemeral room for the container itself (image layers, /tmp); the data volume is extra. */
const EPHEMERAL_MB = 512;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The env line that lets a deployment be found again by our deployment id (reconciliation). */
export function deploymentMarker(deploymentId: string): string {
  return `PANTHERS_DEPLOYMENT_ID=${deploymentId}`;
}

/**
 * The agent's environment inside the container. On Akash the SDL env is the only way to hand the
 * container a value, so the secrets (model API keys) go here too: the SDL is therefore secret
 * and is never logged, stored or put in a message.
 */
export function agentEnv(spec: DeploySpec): Record<string, string> {
  const env: Record<string, string> = {
    ...spec.env,
    PORT: String(AGENT_PORT),
    PANTHERS_DATA_DIR: AGENT_DATA_DIR,
    // The provider's ingress (ingress-nginx or its Gateway API successor) is the only way in:
    // plain HTTP on port 80, TLS in front only when the provider configured it.
    PANTHERS_INGRESS: 'http',
    PANTHERS_AGENT_NFT: spec.nftTokenId,
    PANTHERS_DEPLOYMENT_ID: spec.deploymentId,
    ...spec.secrets,
  };
  for (const name of Object.keys(env)) {
    if (!ENV_NAME.test(name)) throw new ApiError('INVALID_FIELD', `environment variable name "${name}" is not valid`, { field: 'env' });
  }
  return env;
}

/**
 * Renders the SDL (YAML) for one agent container serving port 8080 on the provider's port 80.
 * The requested disk is a persistent volume (akash docs, network-features/persistent-storage)
 * mounted at the data dir: conversations and the agent's signing key survive container
 * restarts for the lease's lifetime (not a new lease: Akash deletes the volume with the lease).
 */
export function renderSdl(spec: DeploySpec, akash: Config['akash']): string {
  const { cpu, memory_mb, disk_mb, gpu } = spec.resources;
  const resources: Record<string, YamlValue> = {
    cpu: { units: cpu },
    memory: { size: `${memory_mb}Mi` },
    storage: [
      { size: `${EPHEMERAL_MB}Mi` },
      { name: DATA_VOLUME, size: `${disk_mb}Mi`, attributes: { persistent: true, class: akash.storageClass } },
    ],
  };
  // Any NVIDIA model: the SDL's empty vendor entry means "no model constraint".
  if (gpu > 0) resources.gpu = { units: gpu, attributes: { vendor: { nvidia: null } } };
  const env = Object.entries(agentEnv(spec)).map(([k, v]) => `${k}=${v}`);
  const sdl: YamlValue = {
    version: '2.0',
    services: {
      [AKASH_SERVICE]: {
        image: akash.image,
        env,
        expose: [{ port: AGENT_PORT, as: 80, to: [{ global: true }] }],
        params: { storage: { [DATA_VOLUME]: { mount: AGENT_DATA_DIR, readOnly: false } } },
      },
    },
    profiles: {
      compute: { [AKASH_SERVICE]: { resources } },
      placement: { dcloud: { pricing: { [AKASH_SERVICE]: { denom: akash.denom, amount: akash.priceCap } } } },
    },
    deployment: { [AKASH_SERVICE]: { dcloud: { profile: AKASH_SERVICE, count: 1 } } },
  };
  return toYaml(sdl);
}
