/**
 * PANTHERS_NATS_URL -> the NATS client's connect options. `@nats-io/transport-node` 3.x does NOT
 * read credentials from a server URL (checked against a nats-server started with --user/--pass:
 * `nats://user:pass@host` is refused with "Authorization Violation"), so they are taken out of the
 * URLs here and passed as `user`/`pass` (or `token` for `nats://token@host`). The NATS link carries
 * forwarded asks that the owner trusts as authenticated: it must be private and authenticated.
 */
export interface NatsLinkOptions {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

export function natsLinkOptions(natsUrl: string): NatsLinkOptions {
  const out: NatsLinkOptions = { servers: [] };
  for (const raw of natsUrl.split(',').map((s) => s.trim()).filter(Boolean)) {
    const u = new URL(raw);
    if (u.username || u.password) {
      const user = decode(u.username);
      if (u.password) {
        out.user ??= user;
        out.pass ??= decode(u.password);
      } else {
        out.token ??= user;
      }
    }
    out.servers.push(`${u.protocol}//${u.host}`);
  }
  return out;
}

/** A malformed %-escape is kept as written rather than crashing the start. */
function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
