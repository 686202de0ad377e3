import Fastify from 'fastify';
import fastifyWebsocket from '@fastify/websocket';
import {
  announce, bearer, chunkFrame, deploymentBody, doneFrame, JwtVerifier, NOT_FOUND, onSignals, paceChunks, peerEnv,
  PeerStore, sseChunk, sseDone, UNAUTHORIZED, type ChatStreamRequest, type Claims,
} from './common.js';

/**
 * Fastify 5 + @fastify/websocket (ws) doing the project's work: verify the same JWT with jose,
 * read the same SQLite row, persist the chat turn, stream the same chunks at the same pace.
 */
const env = peerEnv();
if (!env.dataDir) throw new Error('BENCH_DATA_DIR is required');
const jwt = await JwtVerifier.create(env.publicJwk);
const store = new PeerStore(env.dataDir);

const app = Fastify({ logger: false });
await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });

async function auth(token: string): Promise<Claims | undefined> {
  try {
    return await jwt.verify(token);
  } catch {
    return undefined;
  }
}

app.get('/health', async () => ({ status: 'healthy' }));

app.get<{ Params: { nft: string } }>('/v1/deployments/:nft', async (req, reply) => {
  const claims = await auth(bearer(req.headers.authorization));
  if (!claims) return reply.code(401).type('application/json').send(UNAUTHORIZED);
  const row = store.deployment(req.params.nft);
  if (!row || row.wallet.toLowerCase() !== claims.sub.toLowerCase()) return reply.code(404).type('application/json').send(NOT_FOUND);
  return deploymentBody(row);
});

app.post<{ Params: { nft: string }; Body: { message?: string; conversation_id?: string } }>('/v1/agents/:nft/chat', async (req, reply) => {
  const claims = await auth(bearer(req.headers.authorization));
  if (!claims) return reply.code(401).type('application/json').send(UNAUTHORIZED);
  const message = String(req.body?.message ?? '');
  const id = store.beginTurn(req.body?.conversation_id, req.params.nft, claims.sub, message);
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  let open = true;
  const cancel = paceChunks(
    env.chunks,
    env.delayMs,
    (content) => {
      if (!open) return false;
      raw.write(sseChunk(content));
    },
    (reply, completed) => {
      store.endTurn(id, reply, !completed);
      if (completed && open) raw.end(sseDone(id, env.chunks.length));
    },
  );
  raw.on('close', () => {
    open = false;
    cancel();
  });
});

app.register(async (scope) => {
  scope.get<{ Querystring: { token?: string } }>(
    '/ws',
    {
      websocket: true,
      // The token is checked before the upgrade, as the project does (401 otherwise).
      preValidation: async (req, reply) => {
        const claims = await auth(req.query.token ?? '');
        if (!claims) return reply.code(401).type('application/json').send(UNAUTHORIZED);
        (req as unknown as { claims: Claims }).claims = claims;
      },
    },
    (socket, req) => {
      const claims = (req as unknown as { claims: Claims }).claims;
      let cancel: (() => void) | undefined;
      let open = true;
      socket.on('message', (data) => {
        let msg: ChatStreamRequest;
        try {
          msg = JSON.parse(data.toString()) as ChatStreamRequest;
        } catch {
          return;
        }
        if (msg.type !== 'chat_stream' || !msg.nft_token_id) return;
        const id = store.beginTurn(msg.conversation_id, msg.nft_token_id, claims.sub, String(msg.message ?? ''));
        cancel = paceChunks(
          env.chunks,
          env.delayMs,
          (content) => {
            if (!open) return false;
            socket.send(chunkFrame(id, content));
          },
          (reply, completed) => {
            store.endTurn(id, reply, !completed);
            if (completed && open) socket.send(doneFrame(id, env.chunks.length));
          },
        );
      });
      socket.on('close', () => {
        open = false;
        cancel?.();
      });
    },
  );
});

const address = await app.listen({ host: '127.0.0.1', port: env.port });
announce('fastify', Number(new URL(address).port));
onSignals(() => void app.close());
