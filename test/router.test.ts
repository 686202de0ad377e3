import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router } from '../src/server/router.js';
import type { RouteDef } from '../src/server/route.js';

/** What the router answers: the route and its decoded parameters, 405 with the allowed methods, 404. */
test('router: parameters, HEAD as GET, 405 lists the methods, bad or empty parameters do not match', () => {
  const r = new Router();
  const route = (method: string, path: string) => ({ method, path, handler() {} }) as unknown as RouteDef;
  for (const [m, p] of [['DELETE', '/deployments/:nft'], ['GET', '/deployments/:nft'], ['GET', '/deployments'], ['POST', '/deployments'], ['GET', '/agents/:nft/chat/:cid']]) r.add(route(m, p));
  const hit = (m: string, p: string) => {
    const x = r.match(m, p);
    return 'route' in x ? `${x.route.method} ${x.route.path} ${JSON.stringify(x.params)}` : x;
  };
  assert.equal(hit('GET', '/deployments/12%2034'), 'GET /deployments/:nft {"nft":"12 34"}');
  assert.equal(hit('DELETE', '/deployments/7'), 'DELETE /deployments/:nft {"nft":"7"}');
  assert.equal(hit('HEAD', '/deployments/7'), 'GET /deployments/:nft {"nft":"7"}');
  assert.equal(hit('GET', '/agents/7/chat/c-1'), 'GET /agents/:nft/chat/:cid {"nft":"7","cid":"c-1"}');
  assert.deepEqual(hit('PUT', '/deployments/7'), { methodNotAllowed: ['DELETE', 'GET'] });
  assert.deepEqual(hit('PUT', '/deployments'), { methodNotAllowed: ['GET', 'POST'] });
  assert.deepEqual(hit('GET', '/deployments/%E0'), { notFound: true }, 'not valid percent-encoding');
  assert.deepEqual(hit('PUT', '/deployments/%E0'), { notFound: true }, 'nor for the 405 list');
  assert.deepEqual(hit('GET', '/agents//chat/c'), { notFound: true }, 'an empty parameter');
  assert.deepEqual(hit('GET', '/agents/7/talk/c'), { notFound: true });
  assert.deepEqual(r.methodsFor('/deployments/7'), ['DELETE', 'GET']);
});
