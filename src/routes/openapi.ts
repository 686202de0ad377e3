import * as v from 'valibot';
import { route, type RouteDef } from '../server/route.js';

/**
 * GET /openapi.json (also /v1/openapi.json by the router's alias rule). `document` is called
 * on each request; the feature builds the document once, on first use, after every route is in.
 */
export function openapiRoutes(document: () => Record<string, unknown>): RouteDef[] {
  return [
    route({
      method: 'GET', path: '/openapi.json', rateClass: 'other', auth: 'none', tags: ['monitoring'],
      summary: 'This OpenAPI 3.1 document',
      response: v.object({ openapi: v.string(), info: v.record(v.string(), v.unknown()), paths: v.record(v.string(), v.unknown()) }),
      handler: () => document(),
    }),
  ];
}
