// The Gauge file alone: the package's index also loads its Pushgateway (node:http, https, zlib).
import Gauge from 'prom-client/lib/gauge.js';
import type { Metrics } from '../metrics.js';
import type { ClusterApp } from './cluster-app.js';

/**
 * Per-node cluster metrics, read at scrape time from the node's own counters (nothing on the
 * request path): which node this is, shards and lease epochs held, live nodes, forwards,
 * fencing refusals, lease loop outcomes, frames relayed, and the PostgreSQL/NATS links.
 */
export function registerClusterMetrics(metrics: Metrics, app: ClusterApp): void {
  const registers = [metrics.registry];
  const node = app.node;
  new Gauge({
    name: 'cluster_node_info', help: 'This cluster node (value 1), labelled with its id', labelNames: ['node_id'], registers,
    collect() { this.set({ node_id: node.nodeId }, 1); },
  });
  new Gauge({ name: 'cluster_shards_owned', help: 'Shards this node holds a trusted lease on and serves', registers, collect() { this.set(node.owned().length); } });
  new Gauge({
    name: 'cluster_lease_epoch', help: 'Epoch of each shard lease this node holds', labelNames: ['shard'], registers,
    collect() {
      this.reset();
      for (const l of node.owned()) this.set({ shard: String(l.shard) }, l.epoch);
    },
  });
  new Gauge({ name: 'cluster_nodes_live', help: 'Nodes with a fresh heartbeat row, as this node last saw', registers, collect() { this.set(node.liveNodes.length); } });
  new Gauge({ name: 'cluster_postgres_up', help: '1 while the last lease round trip to PostgreSQL succeeded', registers, collect() { this.set(node.pgUp ? 1 : 0); } });
  new Gauge({ name: 'cluster_nats_connected', help: '1 while connected to NATS', registers, collect() { this.set(node.natsStatus === 'connected' ? 1 : 0); } });
  const counter = (name: string, help: string, read: () => number, labels?: Record<string, string>) =>
    new Gauge({ name, help, registers, labelNames: labels ? Object.keys(labels) : [], collect() { if (labels) this.set(labels, read()); else this.set(read()); } });
  // Counters kept by the node; exposed as *_total gauges set at scrape (prom-client counters cannot be set).
  new Gauge({
    name: 'cluster_forwards_total', help: 'Asks over NATS: asked (sent to another owner), served (answered for another node), retried, failed, deduped (a repeated ask id answered with the first reply)', labelNames: ['outcome'], registers,
    collect() {
      const f = node.forwarder?.stats;
      if (!f) return;
      this.set({ outcome: 'asked' }, f.asked);
      this.set({ outcome: 'served' }, f.served);
      this.set({ outcome: 'retried' }, f.retried);
      this.set({ outcome: 'failed' }, f.failed);
      this.set({ outcome: 'deduped' }, f.deduped);
    },
  });
  counter('cluster_fencing_refusals_total', 'Writes refused because this node no longer held the shard lease at that epoch', () => node.stats.fencingRefusals);
  new Gauge({
    name: 'cluster_lease_events_total', help: 'Lease loop outcomes: claims, renewal rounds, failed rounds, shards lost, trust windows expired, handoffs', labelNames: ['event'], registers,
    collect() {
      const s = node.stats;
      this.set({ event: 'claimed' }, s.claims);
      this.set({ event: 'renewed' }, s.renewals);
      this.set({ event: 'renew_failed' }, s.renewFailures);
      this.set({ event: 'lost' }, s.lost);
      this.set({ event: 'expired' }, s.expired);
      this.set({ event: 'handed_off' }, s.handoffs);
    },
  });
  new Gauge({
    name: 'cluster_frames_total', help: 'WS frames relayed over NATS: sent (frames), messages (NATS messages carrying them), received', labelNames: ['direction'], registers,
    collect() {
      const r = app.publisher.relay.stats;
      this.set({ direction: 'sent' }, r.frames);
      this.set({ direction: 'messages' }, r.messages);
      this.set({ direction: 'received' }, r.received);
    },
  });
  new Gauge({
    name: 'cluster_mac_rejected_total', help: 'NATS messages from other nodes dropped by the cluster MAC check (docs/cluster.md): missing header, bad MAC, timestamp over 30 s off, a request (forwarded ask) replayed', labelNames: ['reason'], registers,
    collect() {
      const s = node.macStats;
      for (const r of ['missing', 'bad', 'stale', 'replayed'] as const) this.set({ reason: r }, s?.[r] ?? 0);
    },
  });
  counter('cluster_revocations_total', 'Session revocations broadcast by this node', () => app.revocations.stats.sent, undefined);
}
