import type { FeatureModule } from '../feature.js';
import { buildOpenApi } from '../openapi/openapi.js';
import { openapiRoutes } from '../routes/openapi.js';
import { VERSION } from '../version.js';

/**
 * The OpenAPI document at GET /v1/openapi.json. Built lazily on the first request: by then
 * every feature and the monitoring routes are registered and the public URL names the real port.
 */
export const openapiFeature: FeatureModule = (f) => {
  let doc: Record<string, unknown> | undefined;
  f.addRoutes(openapiRoutes(() => (doc ??= buildOpenApi(f.routers, { version: VERSION, serverUrl: f.ctx.config.publicUrl }, f.wsHandlers))));
};
