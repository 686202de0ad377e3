import { createStore } from './store';
import { onToken, refresh, sessionStore } from './session';

/**
 * The one WebSocket of the console (`/ws?token=`, the only place a token is put in a URL, as
 * the spec documents). It follows the session: opened with the access token, reopened with a
 * refreshed one, closed at logout. A lost socket reconnects with backoff and sends every
 * `subscribe` again, so deployment progress keeps arriving.
 */

export type SocketState = 'closed' | 'connecting' | 'open' | 'reconnecting';

export const socketStore = createStore<{ state: SocketState; retryAt?: number; reconnects: number }>({ state: 'closed', reconnects: 0 });

export type Frame = { type: string; [k: string]: unknown };

const handlers = new Set<(f: Frame) => void>();
const deploymentSubs = new Set<string>();
let ws: WebSocket | undefined;
let token: string | undefined;
let attempt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;

export function onFrame(fn: (f: Frame) => void): () => void {
  handlers.add(fn);
  return () => void handlers.delete(fn);
}

export function subscribeDeployment(nft: string): void {
  deploymentSubs.add(nft);
  sendFrame({ type: 'subscribe', channel: 'deployment', nft_token_id: nft });
}

export function unsubscribeDeployment(nft: string): void {
  if (!deploymentSubs.delete(nft)) return;
  sendFrame({ type: 'unsubscribe', channel: 'deployment', nft_token_id: nft });
}

function sendFrame(f: object): void {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(f));
}

function open(): void {
  clearTimeout(retryTimer);
  if (!token) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sock = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(token)}`);
  ws = sock;
  socketStore.set({ state: attempt === 0 ? 'connecting' : 'reconnecting', retryAt: undefined });
  sock.onopen = () => {
    if (ws !== sock) return;
    if (attempt > 0) socketStore.set({ reconnects: socketStore.get().reconnects + 1 });
    attempt = 0;
    socketStore.set({ state: 'open', retryAt: undefined });
    for (const nft of deploymentSubs) sock.send(JSON.stringify({ type: 'subscribe', channel: 'deployment', nft_token_id: nft }));
  };
  sock.onmessage = (ev) => {
    if (ws !== sock || typeof ev.data !== 'string') return;
    let f: Frame;
    try {
      f = JSON.parse(ev.data) as Frame;
    } catch {
      return;
    }
    if (f && typeof f.type === 'string') for (const h of [...handlers]) h(f);
  };
  sock.onclose = (ev) => {
    if (ws !== sock) return; // replaced on purpose
    ws = undefined;
    if (!token) return socketStore.set({ state: 'closed' });
    // 4001: the server closed it at the token's expiry. Get a new token, then come back.
    if (ev.code === 4001) {
      void refresh().then((ok) => {
        if (ok) return; // the token listener reopens
        if (token) retry();
      });
      return;
    }
    retry();
  };
}

function retry(): void {
  attempt++;
  const delay = Math.min(15_000, 500 * 2 ** Math.min(attempt - 1, 5)) * (0.8 + Math.random() * 0.4);
  socketStore.set({ state: 'reconnecting', retryAt: Date.now() + delay });
  clearTimeout(retryTimer);
  retryTimer = setTimeout(open, delay);
}

function close(): void {
  clearTimeout(retryTimer);
  const s = ws;
  ws = undefined;
  if (s && s.readyState <= WebSocket.OPEN) s.close(1000, 'client');
}

/** Reconnect now (the "Reconnect" button), skipping the backoff wait. */
export function reconnectNow(): void {
  if (token && !ws) open();
}

onToken((t) => {
  if (t === token) return;
  token = t;
  close();
  attempt = 0;
  if (!t) {
    deploymentSubs.clear();
    socketStore.set({ state: 'closed', retryAt: undefined });
    return;
  }
  open();
});

// Already signed in when this module loads (it is loaded at start, so normally not).
if (sessionStore.get().session) {
  token = sessionStore.get().session!.accessToken;
  open();
}
