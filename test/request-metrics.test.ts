import { test } from 'node:test';
import assert from 'node:assert/strict';
import Registry from 'prom-client/lib/registry.js';
import Counter from 'prom-client/lib/counter.js';
import Histogram from 'prom-client/lib/histogram.js';
import { RequestCounter, RequestHistogram } from '../src/request-metrics.js';

/** Our request counter and histogram must expose exactly what prom-client's would. */
test('the request counter and histogram render the same exposition text as prom-client Counter and Histogram', async () => {
  const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
  const theirs = new Registry();
  const c = new Counter({ name: 'http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers: [theirs] });
  const h = new Histogram({ name: 'http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['route', 'method'], buckets, registers: [theirs] });
  const ours = new Registry();
  const rc = new RequestCounter('http_requests_total', 'HTTP requests by route, method and status', ours);
  const rh = new RequestHistogram('http_request_duration_seconds', 'HTTP request duration', buckets, ours);
  const samples: [string, string, number, number][] = [
    ['/health', 'GET', 200, 0.0001], ['/health', 'GET', 200, 0.0005], ['/v1/deployments/:nft', 'GET', 200, 0.003],
    ['/v1/deployments/:nft', 'GET', 404, 0.02], ['/health', 'GET', 200, 3], ['/v1/deployments/:nft', 'GET', 200, 12], ['unmatched', 'OTHER', 405, 0.001],
  ];
  for (const [route, method, status, s] of samples) {
    c.labels(route, method, String(status)).inc();
    h.labels(route, method).observe(s);
    rc.inc(route, method, status);
    rh.observe(route, method, s);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
});
