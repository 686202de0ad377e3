import net from 'node:net';

/**
 * A TCP proxy on a free loopback port in front of one server (a node's PostgreSQL or NATS link,
 * or its provider API), for partition tests: `cut()` drops every open connection and then
 * refuses new ones (an RST at once, like a closed port) or blackholes them (accepted, never
 * answered: what a dropped route or a firewall DROP rule looks like to the client); `stall()`
 * keeps the connections open but forwards nothing either way (a partition where nothing
 * resets); `restore()` forwards again. It counts what each side sent, with timestamps, so a
 * test can prove a node made no call to that server after a moment.
 */
export type ProxyState = 'open' | 'refuse' | 'blackhole' | 'stalled';

export interface ProxySend {
  /** Date.now() when the bytes arrived from the client */
  at: number;
  bytes: number;
  /** the first line of what was sent (an HTTP request line), for a finding's message */
  head: string;
}

export class TcpProxy {
  private server!: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; upstream?: net.Socket }>();
  private readonly held = new Set<net.Socket>();
  state: ProxyState = 'open';
  port = 0;
  /** connections accepted while open */
  connections = 0;
  /** bytes from clients to the server, in arrival order (kept while `recordSends` is true) */
  readonly sends: ProxySend[] = [];
  recordSends = true;

  private constructor(readonly targetHost: string, private readonly target: () => number | undefined) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    return TcpProxy.balancer(() => targetPort, targetHost);
  }

  /**
   * A load balancer in front of a cluster's nodes: each new connection goes to the port `pick`
   * returns (undefined: refused), like any L4 balancer; one origin for all nodes.
   */
  static async balancer(pick: () => number | undefined, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    const p = new TcpProxy(targetHost, pick);
    await p.listen(0);
    p.port = (p.server.address() as net.AddressInfo).port;
    return p;
  }

  private async listen(port: number): Promise<void> {
    this.server = net.createServer((c) => this.accept(c));
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
  }

  /** host:port clients connect to */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The same URL with its host:port replaced by the proxy's (postgres://u@h:p/db, nats://h:p). */
  url(targetUrl: string): string {
    const u = new URL(targetUrl);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString().replace(/\/$/, '');
  }

  private accept(client: net.Socket): void {
    client.on('error', () => undefined);
    if (this.state === 'refuse') {
      // (a connection accepted just before the listener closed)
      client.resetAndDestroy();
      return;
    }
    if (this.state === 'blackhole' || this.state === 'stalled') {
      // Accepted, never forwarded: the client waits until its own timeout.
      this.held.add(client);
      client.on('close', () => this.held.delete(client));
      client.pause();
      return;
    }
    const port = this.target();
    if (port === undefined) {
      client.resetAndDestroy();
      return;
    }
    this.connections++;
    const pair: { client: net.Socket; upstream?: net.Socket } = { client };
    this.pairs.add(pair);
    const upstream = net.connect(port, this.targetHost);
    pair.upstream = upstream;
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.on('data', (d) => {
      if (this.recordSends) this.sends.push({ at: Date.now(), bytes: d.length, head: d.subarray(0, 120).toString('latin1').split('\r\n')[0]! });
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /**
   * Cuts the link: every open connection is reset, and new ones are refused (`refuse`, the
   * default) or accepted and left hanging (`blackhole`).
   */
  cut(mode: 'refuse' | 'blackhole' = 'refuse'): void {
    this.state = mode;
    for (const p of [...this.pairs]) {
      p.client.resetAndDestroy();
      p.upstream?.destroy();
    }
    this.pairs.clear();
    // A refused connect is what a closed port gives (ECONNREFUSED): stop listening. The port is
    // taken again on restore (ephemeral ports are not reused at once, so it is still free).
    if (mode === 'refuse' && this.server.listening) this.server.close();
  }

  /** Open connections stay up but carry nothing either way; new ones hang (a silent partition). */
  stall(): void {
    this.state = 'stalled';
    for (const p of this.pairs) {
      p.client.pause();
      p.upstream?.pause();
      p.client.unpipe();
      p.upstream?.unpipe();
    }
  }

  /** Forwards again. Stalled connections are dropped (their protocol state is lost anyway). */
  async restore(): Promise<void> {
    if (!this.server.listening) await this.listen(this.port);
    if (this.state === 'stalled') for (const p of [...this.pairs]) { p.client.destroy(); p.upstream?.destroy(); }
    for (const c of this.held) c.destroy();
    this.held.clear();
    this.state = 'open';
  }

  /** Bytes clients sent at or after `since` (Date.now() ms). */
  bytesSince(since: number): number {
    let n = 0;
    for (const s of this.sends) if (s.at >= since) n += s.bytes;
    return n;
  }

  get open(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    this.cut('refuse');
    for (const c of this.held) c.destroy();
    if (this.server.listening) await new Promise<void>((r) => this.server.close(() => r()));
  }
}
