import * as v from 'valibot';
import type { AppContext } from '../app-context.js';
import { BUSY_TIMEOUT_MS, probeWrite } from '../db/database.js';
import { json, route, type RouteDef } from '../server/route.js';
import { VERSION } from '../version.js';
import type { ClusterApp } from '../cluster/cluster-app.js';

export interface MonitoringDeps {
  ctx: AppContext;
  deploymentsActive(): number;
  overloaded(): boolean;
  /** Limits being approached (the audit log near its cap): /health reports degraded with them. */
  warnings?(): string[];
  /** Cluster mode: this node's id, shards, leases and links (shown in /health; unhealthy without them). */
  cluster?: ClusterApp;
}

const clusterHealth = v.object({
  node_id: v.string(), nodes_live: v.array(v.string()), shards_owned: v.number(),
  leases: v.array(v.object({ shard: v.number(), epoch: v.number() })),
  postgres: v.picklist(['up', 'down']), nats: v.string(),
  forwards: v.object({ asked: v.number(), served: v.number(), retried: v.number(), failed: v.number() }),
  fencing_refusals: v.number(),
});

/** GET /health, GET /metrics, GET /v1 (the version document). */
export function monitoringRoutes({ ctx, deploymentsActive, overloaded, warnings, cluster }: MonitoringDeps): RouteDef[] {
  // A write probe costs a transaction: probe at most once a second, however often /health is polled.
  let probedAt = -Infinity;
  let writable = true;
  let busySince: number | undefined;
  const dbWritable = () => {
    const now = ctx.now();
    if (now - probedAt >= 1000) {
      const probe = probeWrite(ctx.db);
      // The audit writer thread holds the lock for a batch now and then: that is a writable file in
      // use. Only a lock held longer than our own writes wait (BUSY_TIMEOUT_MS) makes it unwritable.
      busySince = probe === 'busy' ? busySince ?? now : undefined;
      writable = probe === 'writable' || (probe === 'busy' && now - busySince! < BUSY_TIMEOUT_MS * 2);
      probedAt = now;
    }
    return writable;
  };
  return [
    route({
      method: 'GET', path: '/health', rateClass: 'other', auth: 'none', tags: ['monitoring'],
      summary: 'Service health check',
      response: v.object({
        status: v.picklist(['healthy', 'unhealthy']), version: v.string(), uptime: v.number(), deployments_active: v.number(),
        overloaded: v.optional(v.boolean()), degraded: v.optional(v.boolean()), warnings: v.optional(v.array(v.string())), reason: v.optional(v.string()),
        cluster: v.optional(clusterHealth),
      }),
      handler() {
        const linked = cluster ? cluster.healthy() : true;
        const writable = dbWritable();
        const busy = overloaded();
        const warn = warnings?.() ?? [];
        const ok = writable && linked;
        const body = {
          status: ok ? 'healthy' : 'unhealthy',
          version: VERSION,
          uptime: Math.round((ctx.now() - ctx.startedAt) / 1000),
          deployments_active: deploymentsActive(),
          ...(busy ? { overloaded: true } : {}),
          // Still serving (status stays in the spec's healthy|unhealthy), but an operator should act.
          ...(warn.length ? { degraded: true, warnings: warn } : {}),
          ...(writable ? {} : { reason: 'database is not writable' }),
          ...(linked ? {} : { reason: 'this cluster node has lost PostgreSQL or NATS' }),
          ...(cluster ? { cluster: cluster.health() } : {}),
        };
        return json(ok ? 200 : 503, body);
      },
    }),
    route({
      method: 'GET', path: '/metrics', rateClass: 'other', auth: 'none', tags: ['monitoring'], raw: true,
      summary: 'Prometheus-formatted metrics',
      async handler() {
        const m = await ctx.metrics.render();
        return { kind: 'text', status: 200, body: m.body, contentType: m.contentType };
      },
    }),
    route({
      method: 'GET', path: '/v1', rateClass: 'other', auth: 'none', tags: ['monitoring'],
      summary: 'The current API version',
      response: v.object({ version: v.string(), api_version: v.string(), openapi: v.string() }),
      handler: () => ({ version: VERSION, api_version: 'v1', openapi: '/v1/openapi.json' }),
    }),
  ];
}
