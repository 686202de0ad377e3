import assert from 'node:assert/strict';
import { waitFor, type TestServer } from './server.js';
import { signIn, type SignedIn } from './wallets.js';

/** Signs in as a fresh owner of `nft`, deploys its agent on `local` and waits until it runs. */
export async function deployLocal(server: TestServer, nft: string, agent?: object): Promise<SignedIn> {
  const me = await signIn(server, { nft });
  const r = await server.request('POST', '/v1/deployments', { token: me.access_token, body: { nft_token_id: nft, provider: 'local', agent } });
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await server.request('GET', `/v1/deployments/${nft}`, { token: me.access_token })).body.status === 'running');
  return me;
}
