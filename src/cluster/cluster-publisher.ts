import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { AuthClaims } from '../server/route.js';
import type { Publisher, TopicHooks } from '../server/ws-server.js';
import { FrameRelay } from './frame-relay.js';

const DEPLOYMENT = 'deployment:';
const dec = new TextDecoder();

/**
 * The cross-node Publisher (shared/reference/cluster.md, "Frames across nodes"): every frame goes
 * to this node's uWS subscribers at once and, batched per event-loop turn, to NATS.
 * - Deployment frames (low rate): every node follows `panthers.frames.deployment.*` for its
 *   whole life, republishes them to its local topic and drops its cached view of that NFT's
 *   deployment (`onDeploymentFrame`).
 * - Chat frames (high rate): a node follows `panthers.frames.chat.<id>` only while it has local
 *   followers of that conversation (the WS server's topic hooks), ref-counted in FrameRelay.
 */
export class ClusterPublisher implements Publisher, TopicHooks {
  readonly relay: FrameRelay;
  private readonly deploymentSub: Subscription;

  constructor(
    nc: NatsConnection,
    private readonly local: Publisher,
    onDeploymentFrame: (nft: string) => void,
    prefix = 'panthers',
  ) {
    this.relay = new FrameRelay(nc, (topic, frame) => local.publish(topic, frame), prefix);
    const base = `${prefix}.frames.deployment.`;
    this.deploymentSub = nc.subscribe(`${base}*`, {
      callback: (err, m) => {
        if (err) return;
        const nft = m.subject.slice(base.length);
        const topic = DEPLOYMENT + nft;
        // The view changed on its owner: the next read here must not serve the old one.
        onDeploymentFrame(nft);
        for (const frame of dec.decode(m.data).split('\n')) {
          this.relay.stats.received++;
          local.publish(topic, frame);
        }
      },
    });
  }

  publish(topic: string, frame: string): void {
    this.relay.publish(topic, frame);
  }

  /**
   * At least 1: sockets on other nodes may follow the topic, and this node cannot see them (NATS
   * keeps interest to itself). So the owner renders and relays every chunk in cluster mode; where
   * nobody follows, that costs one NATS message per topic per event-loop turn, which the server
   * drops. (An interest protocol could restore one-process's skip; at-most-once announcements
   * would lose frames when one is lost, so it is not done.)
   */
  subscribers(topic: string): number {
    return Math.max(1, this.local.subscribers(topic));
  }

  /** Never changes: subscribers() is never 0 here. */
  readonly subscriptions = 0;

  dropSubscribers(topic: string, keep: (auth: AuthClaims) => boolean, frame: object): number {
    return this.local.dropSubscribers?.(topic, keep, frame) ?? 0;
  }

  follow(topic: string): void {
    if (!topic.startsWith(DEPLOYMENT)) this.relay.follow(topic);
  }

  unfollow(topic: string): void {
    if (!topic.startsWith(DEPLOYMENT)) this.relay.unfollow(topic);
  }

  close(): void {
    this.relay.flush();
    this.deploymentSub.unsubscribe();
  }
}
