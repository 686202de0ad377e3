/**
 * The TypeScript SDK of the Secret Panthers API (`secret-panthers/client`). Runs in Node >= 20
 * (WebSocket features need the `ws` package there, or Node >= 22) and in browsers.
 *
 *   import { createClient } from 'secret-panthers/client';
 *   const client = createClient({ baseUrl: 'http://127.0.0.1:3000' });
 *   await client.signInWithPrivateKey(process.env.KEY!, '42');
 *   await client.deployments.create({ nft_token_id: '42', provider: 'local' });
 *   for await (const { content } of client.agent('42').chatStream('hello')) process.stdout.write(content);
 */
export { PanthersClient, AgentClient, createClient, type ClientOptions, type CallOptions, type Tokens } from './client.js';
export { PanthersError, isPanthersError, type ClientErrorCode } from './errors.js';
export { ChatStream } from './chat-stream.js';
export {
  privateKeySigner, providerSigner, addressOfPrivateKey, signPersonalMessage, signRequest, personalMessageDigest,
  type MessageSigner, type Eip1193Provider,
} from './signing.js';
export type { WebSocketFactory, WebSocketLike } from './ws.js';
export type { ErrorCode } from '../errors.js';
export type * from './types.js';
