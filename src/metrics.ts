import type client from 'prom-client';
// The parts we use, file by file: the package's index also loads its Pushgateway and cluster
// aggregator (node:http, node:https, node:zlib, node:cluster: ~8 ms of a cold start's CPU).
import Registry from 'prom-client/lib/registry.js';
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import collectDefaultMetrics from 'prom-client/lib/defaultMetrics.js';
import { RequestCounter, RequestHistogram } from './request-metrics.js';

/**
 * The process's Prometheus metrics, in one registry per process (tests build several servers in
 * one process, so nothing here touches prom-client's global registry).
 */
export const KNOWN_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: RequestCounter;
  readonly httpDuration: RequestHistogram;
  readonly actorsLive: client.Gauge<'kind'>;
  readonly actorCrashes: client.Counter<'kind'>;
  readonly actorPassivations: client.Counter<'kind'>;
  readonly wsConnections: client.Gauge;
  readonly wsSlowConsumers: client.Counter<'action'>;
  readonly rateLimited: client.Counter<'class'>;
  readonly timeouts: client.Counter;
  readonly shed: client.Counter;
  readonly chatTurns: client.Counter<'outcome'>;
  readonly deploymentsActive: client.Gauge;
  readonly auditQueue: client.Gauge;
  readonly auditRows: client.Gauge;
  readonly auditMaxRows: client.Gauge;
  readonly auditPruned: client.Counter<'reason'>;
  readonly auditAggregated: client.Counter;
  readonly wsRefused: client.Counter<'reason'>;


  constructor(opts: { actorCounts?: () => Record<string, number>; deploymentsActive?: () => number; defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new RequestCounter('http_requests_total', 'HTTP requests by route, method and status', this.registry);
    this.httpDuration = new RequestHistogram('http_request_duration_seconds', 'HTTP request duration',
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], this.registry);
    const counts = opts.actorCounts;
    this.actorsLive = new Gauge({
      name: 'actors_live', help: 'Live (not passivated) actors by kind', labelNames: ['kind'], registers,
      collect() {
        if (!counts) return;
        for (const [kind, n] of Object.entries(counts())) this.set({ kind }, n);
      },
    });
    this.actorCrashes = new Counter({ name: 'actor_crashes_total', help: 'Actor crashes handled by supervisors', labelNames: ['kind'], registers });
    this.actorPassivations = new Counter({ name: 'actor_passivations_total', help: 'Idle actors stopped', labelNames: ['kind'], registers });
    this.wsConnections = new Gauge({ name: 'ws_connections', help: 'Open WebSocket connections', registers });
    this.wsSlowConsumers = new Counter({ name: 'ws_slow_consumers_total', help: 'WebSocket messages dropped or sockets closed for a slow reader', labelNames: ['action'], registers });
    this.rateLimited = new Counter({ name: 'rate_limited_total', help: 'Requests refused by the rate limiter', labelNames: ['class'], registers });
    this.timeouts = new Counter({ name: 'request_timeouts_total', help: 'Requests answered 504 TIMEOUT', registers });
    this.shed = new Counter({ name: 'requests_shed_total', help: 'Requests shed with 503 under event-loop overload', registers });
    this.chatTurns = new Counter({ name: 'chat_turns_total', help: 'Chat turns by outcome', labelNames: ['outcome'], registers });
    const active = opts.deploymentsActive;
    this.deploymentsActive = new Gauge({
      name: 'deployments_active', help: 'Deployments pending, deploying, running or stopping', registers,
      collect() { if (active) this.set(active()); },
    });
    this.auditQueue = new Gauge({ name: 'audit_queue_length', help: 'Audit rows waiting for the next batch write', registers });
    this.auditRows = new Gauge({ name: 'audit_rows', help: 'Rows in the audit log', registers });
    this.auditMaxRows = new Gauge({ name: 'audit_max_rows', help: 'The audit log cap (PANTHERS_AUDIT_MAX_ROWS); past it the oldest rows are pruned', registers });
    this.auditPruned = new Counter({ name: 'audit_pruned_rows_total', help: 'Audit rows deleted, by reason (retention, cap)', labelNames: ['reason'], registers });
    this.auditAggregated = new Counter({ name: 'audit_aggregated_requests_total', help: 'Refused requests and preflights counted in per-IP aggregate rows instead of a row each', registers });
    this.wsRefused = new Counter({ name: 'ws_upgrades_refused_total', help: 'WebSocket upgrades refused, by reason', labelNames: ['reason'], registers });
  }

  observeRequest(route: string, rawMethod: string, status: number, seconds: number): void {
    // Any other method a client invents is one label, so it cannot grow the series without bound.
    const method = KNOWN_METHODS.has(rawMethod) ? rawMethod : 'OTHER';
    this.httpRequests.inc(route, method, status);
    this.httpDuration.observe(route, method, seconds);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
