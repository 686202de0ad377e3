import type { AppContext } from '../app-context.js';
import { ConfigError } from '../config.js';
import type { FeatureModule } from '../feature.js';
import { AuditLog } from '../guards/audit-log.js';
import { ChatQuota } from '../guards/quota.js';
import { HmacRequestVerifier } from '../guards/request-signing.js';

/** The chat path's daily token budget for this process (no-op when the quota is 0). */
export function createChatQuota(ctx: AppContext): ChatQuota {
  return new ChatQuota(ctx.storage.quota, ctx.config.chatDailyTokenQuota, ctx.now, ctx.config.streamTimeoutMs + 60_000, (err) => ctx.log.error({ err }, 'writing chat usage failed'));
}

/**
 * The API guarantees that are not in the request pipeline itself: the hash-chained audit log,
 * HMAC request signing (when PANTHERS_REQUIRE_SIGNED_REQUESTS is on), and the production
 * rule that public endpoint URLs are https. Rate limits, CORS, the HTTPS check, shedding and
 * deadlines run in src/server/http-server.ts for every route by its declared class.
 */
export const guaranteesFeature: FeatureModule = (f) => {
  const { ctx } = f;
  const { config } = ctx;
  if (config.env === 'production' && !config.publicUrl.startsWith('https://')) {
    // Endpoint URLs and sign-in messages are built from it: in production they must be https.
    throw new ConfigError('PANTHERS_PUBLIC_URL', `must be an https:// URL when PANTHERS_ENV=production, got "${config.publicUrl}"`);
  }

  // A cluster node appends to the one chain in PostgreSQL (every node the same chain); else SQLite.
  const audit = new AuditLog({
    db: ctx.db, databaseUrl: config.cluster?.databaseUrl, log: ctx.log, metrics: ctx.metrics,
    retentionDays: config.auditRetentionDays, maxRows: config.auditMaxRows, now: ctx.now,
  });
  f.setAudit(audit);
  f.addHealthWarning(() => audit.nearCap());
  f.onStart(() => audit.start());
  f.onStop(() => audit.stop());

  if (config.requireSignedRequests) {
    f.setRequestVerifier(new HmacRequestVerifier({ sessions: ctx.storage.sessions, replay: ctx.storage.replay, now: ctx.now }));
  }
};
