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

/** Where the image keeps its SQLite file and signing key (the Dockerfile's PANTHERS_DATA_DIR). */
export const AGENT_DATA_DIR = '/app/data';
/** The named volume at the data dir; with fs_persistence=1 SecretVM keeps it across reboots. */
export const DATA_VOLUME = 'agent-data';
export const TRAEFIK_IMAGE = 'traefik:v2.10';

/**
 * The docker-compose file for the agent VM. Plain settings are written in; every secret appears
 * only as a ${NAME} reference that the VM fills from secrets_plaintext (its .env), so the
 * compose file (which SecretVM shows in its console and attestation) holds no secret.
 *
 * TLS: SecretVM gives the VM a domain (compose sees it as $DOMAIN_NAME) and no proxy of its
 * own; scrtlabs/secretvm-cli `vm create --tls` adds a Traefik service that gets a Let's Encrypt
 * certificate for that domain (TLS-ALPN challenge) and routes :443 to the app. This file does
 * the same: only Traefik publishes ports (80, 443); the agent is reachable on the internal
 * network alone, so its one peer is Traefik, which sets X-Forwarded-Proto/For (and drops the
 * client's own X-Forwarded-* headers: forwardedHeaders.insecure is false by default).
 */
export function renderCompose(spec: DeploySpec, image: string): string {
  checkNames(spec.env);
  checkNames(spec.secrets);
  const environment: Record<string, string> = {};
  const plain: Record<string, string> = {
    ...spec.env,
    PORT: String(AGENT_PORT),
    PANTHERS_DATA_DIR: AGENT_DATA_DIR,
    PANTHERS_AGENT_NFT: spec.nftTokenId,
    PANTHERS_DEPLOYMENT_ID: spec.deploymentId,
  };
  // Compose interpolates "$" in values: a literal one is written "$$".
  for (const [k, v] of Object.entries(plain)) if (!(k in spec.secrets)) environment[k] = v.replace(/\$/g, '$$$$');
  // Set after the escaping on purpose: these two are meant to be interpolated by compose.
  environment.PANTHERS_INGRESS = 'tls';
  environment.PANTHERS_PUBLIC_URL = 'https://${DOMAIN_NAME}';
  for (const k of Object.keys(spec.secrets)) environment[k] = `\${${k}}`;
  return toYaml({
    services: {
      agent: {
        image,
        restart: 'unless-stopped',
        environment,
        volumes: [`${DATA_VOLUME}:${AGENT_DATA_DIR}`],
        networks: ['traefik'],
        labels: {
          'traefik.enable': 'true',
          'traefik.http.routers.agent.rule': 'Host(`${DOMAIN_NAME}`)',
          'traefik.http.routers.agent.entrypoints': 'websecure',
          'traefik.http.routers.agent.tls.certresolver': 'letsencrypt',
          'traefik.http.services.agent.loadbalancer.server.port': String(AGENT_PORT),
        },
      },
      traefik: {
        image: TRAEFIK_IMAGE,
        restart: 'unless-stopped',
        command: [
          '--api.dashboard=false',
          '--providers.docker=true',
          '--providers.docker.exposedbydefault=false',
          '--entrypoints.web.address=:80',
          '--entrypoints.web.http.redirections.entrypoint.to=websecure',
          '--entrypoints.websecure.address=:443',
          '--certificatesresolvers.letsencrypt.acme.tlschallenge=true',
          '--certificatesresolvers.letsencrypt.acme.email=admin@${DOMAIN_NAME}',
          '--certificatesresolvers.letsencrypt.acme.storage=/letsencrypt/acme.json',
        ],
        ports: ['80:80', '443:443'],
        volumes: ['/var/run/docker.sock:/var/run/docker.sock:ro', 'letsencrypt:/letsencrypt'],
        networks: ['traefik'],
      },
    },
    networks: { traefik: { driver: 'bridge' } },
    volumes: { [DATA_VOLUME]: {}, letsencrypt: {} },
  });
}

/**
 * The secrets as .env text (what SecretVM takes as secrets_plaintext and docker compose reads).
 * Every value is double-quoted with \\, \", \$ and newlines escaped. Compose (compose-go
 * dotenv/parser.go) expands ${VAR} inside double-quoted AND unquoted .env values, so a system
 * prompt reading "${PANTHERS_OPENAI_API_KEY}" would otherwise become the operator's key; \$ is
 * its escape for a literal "$". Single quotes are literal but cannot hold a value that ends
 * in a backslash, so they are not used.
 */
export function renderSecretsEnv(secrets: Record<string, string>): string {
  checkNames(secrets);
  return Object.entries(secrets).map(([k, v]) => `${k}=${dotenvQuote(v)}`).join('\n') + (Object.keys(secrets).length ? '\n' : '');
}

export function dotenvQuote(value: string): string {
  return '"' + value.replace(/[\\"$]/g, (c) => `\\${c}`).replace(/\r/g, '\\r').replace(/\n/g, '\\n') + '"';
}
