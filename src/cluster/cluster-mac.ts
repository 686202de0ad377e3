import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { createInbox, errors, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Payload, type PublishOptions, type RequestOptions, type Subscription, type SubscriptionOptions } from '@nats-io/transport-node';

/** The NATS header that carries a cluster message's proof of origin. */
export const MAC_HEADER = 'Panthers-Mac';
/** A message further than this from the receiver's clock is dropped (stale or replayed later). */
export const MAX_SKEW_MS = 30_000;

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** Why a received message was dropped, counted for /metrics (cluster_mac_rejected_total). */
export interface MacStats {
  signed: number;
  verified: number;
  missing: number;
  bad: number;
  stale: number;
  /** requests (forwarded asks) seen before with the same MAC: a replay, not run again */
  replayed: number;
}

/** Asks remembered for replay: a MAC is valid for at most 2 x MAX_SKEW_MS of the receiver's clock. */
const SEEN_MS = 2 * MAX_SKEW_MS + 1000;
const SEEN_MAX = 200_000;

/** The HMAC key every node derives from PANTHERS_CLUSTER_SECRET (the same secret on every node). */
export function clusterMacKey(clusterSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', clusterSecret, '', 'panthers nats v1', 32));
}

function bytes(p: Payload | undefined): Uint8Array {
  if (p === undefined) return EMPTY;
  return typeof p === 'string' ? enc.encode(p) : p;
}

function digest(key: Buffer, subject: string, body: Uint8Array, ts: number, reply: string): Buffer {
  return createHmac('sha256', key).update(`${ts}\n${subject}\n${reply}\n`).update(body).digest();
}

/**
 * `<unix ms>.<base64url HMAC-SHA256(ts + "\n" + subject + "\n" + reply + "\n" + body)>`. The
 * reply subject is under the MAC (empty for a plain publish) so a captured ask cannot be replayed
 * with another reply subject or none: the receiver's replay check needs it to be the original.
 */
export function macValue(key: Buffer, subject: string, body: Uint8Array, ts: number, reply = ''): string {
  return `${ts}.${digest(key, subject, body, ts, reply).toString('base64url')}`;
}

/** 'ok', or why the value does not prove that a holder of the key sent this body on this subject within MAX_SKEW_MS. */
export function checkMac(key: Buffer, subject: string, body: Uint8Array, value: string | undefined, now = Date.now(), reply = ''): 'ok' | 'missing' | 'bad' | 'stale' {
  if (!value) return 'missing';
  const dot = value.indexOf('.');
  // 43 base64url characters: 32 bytes, no padding (a longer string would decode to the same bytes).
  if (dot <= 0 || dot > 16 || value.length - dot - 1 !== 43) return 'bad';
  const ts = Number(value.slice(0, dot));
  if (!Number.isSafeInteger(ts)) return 'bad';
  const got = Buffer.from(value.slice(dot + 1), 'base64url');
  if (got.length !== 32 || !timingSafeEqual(got, digest(key, subject, body, ts, reply))) return 'bad';
  return Math.abs(now - ts) > MAX_SKEW_MS ? 'stale' : 'ok';
}

/**
 * Defence in depth for the NATS link (docs/cluster.md, "The NATS link is a trust boundary"): the
 * same NatsConnection, except that every message it publishes, every request and every reply
 * carries a Panthers-Mac header, and every subscription callback (hence every reply a responder
 * sends through `msg.respond`) only sees messages whose MAC checks out within MAX_SKEW_MS. The
 * cluster parts (Forwarder, FrameRelay, RemoteTurns, NatsRevocations, NatsInvalidations,
 * RateSync, ClusterPublisher) take it where they took the raw connection and do not change.
 *
 * `request` waits for the first AUTHENTIC reply: a forged answer from a plain NATS client is
 * dropped and the real owner's still wins (nats.js's own request would take whichever came first).
 * The reply's MAC covers the requester's unique inbox subject, so a captured reply cannot answer
 * another request.
 */
export function authenticatedLink(nc: NatsConnection, clusterSecret: string, now: () => number = Date.now): NatsConnection & { readonly macStats: MacStats } {
  const key = clusterMacKey(clusterSecret);
  const stats: MacStats = { signed: 0, verified: 0, missing: 0, bad: 0, stale: 0, replayed: 0 };
  // MAC of each request received (asks that act: deploy, stop, turn) -> when, in arrival order.
  // A legitimate retry is a new request with a new timestamp, hence a new MAC.
  const seen = new Map<string, number>();
  const firstTime = (mac: string, at: number): boolean => {
    for (const [k, t] of seen) {
      if (at - t < SEEN_MS && seen.size < SEEN_MAX) break;
      seen.delete(k);
    }
    if (seen.has(mac)) return false;
    seen.set(mac, at);
    return true;
  };

  const sign = (subject: string, body: Uint8Array, given?: MsgHdrs, reply?: string): MsgHdrs => {
    const h = given ?? natsHeaders();
    h.set(MAC_HEADER, macValue(key, subject, body, now(), reply));
    stats.signed++;
    return h;
  };
  const accept = (m: Msg): boolean => {
    const value = m.headers?.get(MAC_HEADER);
    const at = now();
    const r = checkMac(key, m.subject, m.data, value, at, m.reply ?? '');
    if (r === 'ok') {
      if (m.reply && !firstTime(value!, at)) {
        stats.replayed++;
        return false;
      }
      stats.verified++;
      return true;
    }
    stats[r]++;
    return false;
  };
  const publish = (subject: string, payload?: Payload, opts?: PublishOptions): void => {
    const body = bytes(payload);
    nc.publish(subject, body, { ...opts, headers: sign(subject, body, opts?.headers, opts?.reply) });
  };
  /** A verified message whose respond() signs the reply for the requester's inbox. */
  const signedReplies = (m: Msg): Msg => {
    const respond = m.respond.bind(m);
    m.respond = (payload?: Payload, opts?: PublishOptions): boolean => {
      if (!m.reply) return false;
      const body = bytes(payload);
      return respond(body, { ...opts, headers: sign(m.reply, body, opts?.headers) });
    };
    return m;
  };
  const subscribe = (subject: string, opts?: SubscriptionOptions): Subscription => {
    const cb = opts?.callback;
    // Every cluster receiver uses a callback; an iterator would hand out unchecked messages.
    if (!cb) throw new Error('authenticatedLink.subscribe: pass a callback (messages are verified in it)');
    return nc.subscribe(subject, {
      ...opts,
      callback: (err, m) => {
        if (err) return cb(err, m);
        if (accept(m)) cb(null, signedReplies(m));
      },
    });
  };
  const request = (subject: string, payload?: Payload, opts?: RequestOptions): Promise<Msg> => {
    const body = bytes(payload);
    const timeout = opts?.timeout ?? 1000;
    const inbox = createInbox();
    return new Promise<Msg>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const sub = nc.subscribe(inbox, {
        callback: (err, m) => {
          if (err) return done(err);
          // No responders: the server's own status message (it cannot carry our MAC). A forged
          // one only makes the asker retry, which a publisher could cause by other means anyway.
          if (m.data.length === 0 && m.headers?.code === 503) return done(new errors.RequestError('no responders', { cause: new errors.NoRespondersError(subject) }));
          if (accept(m)) done(undefined, m);
        },
      });
      const done = (err?: Error, m?: Msg): void => {
        clearTimeout(timer);
        sub.unsubscribe();
        if (err) reject(err);
        else resolve(m!);
      };
      timer = setTimeout(() => done(new errors.TimeoutError()), timeout);
      try {
        // The SUB above goes out before this PUB on the same connection: the reply cannot be missed.
        nc.publish(subject, body, { reply: inbox, headers: sign(subject, body, opts?.headers, inbox) });
      } catch (e) {
        done(e as Error);
      }
    });
  };

  return new Proxy(nc, {
    get(target, prop) {
      if (prop === 'publish') return publish;
      if (prop === 'subscribe') return subscribe;
      if (prop === 'request') return request;
      if (prop === 'macStats') return stats;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as NatsConnection & { readonly macStats: MacStats };
}
