import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor, type HttpResult, type TestServer } from './helpers/server.js';
import { route } from '../src/server/route.js';

let server: TestServer;
let slowAborted = false;

/** Blocks the event loop for `ms` (a CPU-bound handler, as a runaway computation would). */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

before(async () => {
  // 150 ms: the saturating handler blocks 200 ms at a time, while a loaded CI machine's own lag
  // spikes (other test files beside this one) stay below it most of the time.
  server = await startServer({ PANTHERS_EVENT_LOOP_LAG_LIMIT_MS: '150', PANTHERS_REQUEST_TIMEOUT_MS: '300' });
  server.app.routes.api.add(
    route({
      method: 'POST', path: '/test/saturate', rateClass: 'other', auth: 'none', summary: 'test',
      handler: () => {
        // Keep the loop saturated for ~2.5 s: 200 ms blocks with one turn of the loop between.
        const until = Date.now() + 2500;
        const step = () => {
          spin(200);
          if (Date.now() < until) setImmediate(step);
        };
        setImmediate(step);
        return { started: true };
      },
    }),
  );
  server.app.routes.api.add(
    route({
      method: 'GET', path: '/test/slow', rateClass: 'other', auth: 'none', summary: 'test',
      handler: (req) =>
        new Promise((resolve) => {
          const t = setTimeout(() => resolve({ late: true }), 2000);
          req.signal.addEventListener('abort', () => {
            slowAborted = true;
            clearTimeout(t);
            resolve({ late: false });
          });
        }),
    }),
  );
});

after(() => server?.stop());

/** A request the test needs answered: retried while the machine's own load has it shed. */
async function accepted(fn: () => Promise<HttpResult>): Promise<HttpResult> {
  for (let i = 0; ; i++) {
    const r = await fn();
    if (!(r.status === 503 && r.body?.error?.details?.reason === 'overloaded') || i >= 100) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
}

function shedTotal(metrics: string): number {
  return Number(/requests_shed_total (\d+)/.exec(metrics)?.[1] ?? 0);
}

test('a saturated event loop sheds new work with 503 SERVICE_UNAVAILABLE + Retry-After; /health says overloaded', async () => {
  const shedBefore = shedTotal((await accepted(() => server.request('GET', '/v1/metrics'))).text);
  const start = await accepted(() => server.request('POST', '/v1/test/saturate', { body: {} }));
  assert.equal(start.status, 200);
  const answers: HttpResult[] = [];
  const healths: HttpResult[] = [];
  const until = Date.now() + 2000;
  while (Date.now() < until && answers.length < 200) {
    const batch = await Promise.all([
      ...Array.from({ length: 5 }, () => server.request('GET', '/v1/metrics')),
      server.request('GET', '/v1/health'),
    ]);
    answers.push(...batch.slice(0, 5));
    healths.push(batch[5]!);
  }
  const shed = answers.filter((r) => r.status === 503);
  assert.ok(shed.length > 0, `no request was shed (statuses: ${answers.map((r) => r.status).join(',')})`);
  for (const r of shed) {
    assert.equal(r.body.error.code, 'SERVICE_UNAVAILABLE');
    assert.equal(r.body.error.details.reason, 'overloaded');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
  }
  // /health is never shed and reports the overload.
  assert.ok(healths.every((h) => h.status === 200));
  assert.ok(healths.some((h) => h.body.overloaded === true), 'health never said overloaded');
  // Once the loop is free again, work is accepted and /health no longer says overloaded.
  await waitFor(async () => (await server.request('GET', '/v1/health')).body.overloaded === undefined, 5000, 100);
  const m = await accepted(() => server.request('GET', '/v1/metrics'));
  assert.equal(m.status, 200);
  assert.ok(shedTotal(m.text) - shedBefore >= shed.length, 'every shed request is counted');
});

test('a request past its deadline answers 504 TIMEOUT, the handler is aborted, and it is counted', async () => {
  let t0 = Date.now();
  const r = await accepted(() => {
    t0 = Date.now();
    return server.request('GET', '/v1/test/slow');
  });
  assert.equal(r.status, 504);
  assert.equal(r.body.error.code, 'TIMEOUT');
  assert.equal(r.body.error.details.timeout_ms, 300);
  const took = Date.now() - t0;
  assert.ok(took >= 300 && took < 5000, `answered after ${took} ms`);
  await waitFor(() => slowAborted, 2000);
  const m = await server.request('GET', '/v1/metrics');
  assert.match(m.text, /request_timeouts_total 1\b/);
  // The server is fine afterwards.
  assert.equal((await server.request('GET', '/v1/health')).status, 200);
});
