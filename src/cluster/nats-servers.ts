/**
 * PANTHERS_NATS_URL as connect() options. nats.js (v3) does not read credentials from a server
 * URL, so `nats://user:pass@host:4222` or `nats://token@host:4222` (the form nats-server's docs
 * and the Go client use) would connect without them. They are taken out of each URL here (the
 * servers list keeps no secret, so nothing that prints it leaks one) and given as user/pass or
 * token; every URL must carry the same credentials (one identity per node).
 */
export interface NatsServers {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

export function natsServers(list: string): NatsServers {
  const out: NatsServers = { servers: [] };
  let auth: string | undefined;
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const u = new URL(raw);
    const user = decodeURIComponent(u.username);
    const pass = decodeURIComponent(u.password);
    const key = `${user}\n${pass}`;
    if (auth !== undefined && auth !== key) throw new Error('PANTHERS_NATS_URL: every server URL must carry the same credentials');
    auth = key;
    if (user && pass) {
      out.user = user;
      out.pass = pass;
    } else if (user) out.token = user;
    u.username = '';
    u.password = '';
    out.servers.push(`${u.protocol}//${u.host}`);
  }
  return out;
}
