import type { NatsConnection, Subscription } from '@nats-io/transport-node';

const enc = new TextEncoder();
/** UTF-16 length of one NATS message's frames: at most 3 bytes each, so under 1 MB with room */
const MAX_MESSAGE_CHARS = 256 * 1024;
const dec = new TextDecoder();

/**
 * Carries WS frames (deployment_status, chat_chunk) to the nodes whose sockets follow a topic
 * (shared/reference/cluster.md, "Frames across nodes"). The producing node publishes the frames
 * of one event-loop turn for a topic as ONE NATS message, the pre-rendered JSON frames joined by
 * newlines (JSON text has no raw newline); a receiving node splits them and hands each to its
 * local publish as is: no re-serialization, order kept per topic (NATS keeps a publisher's order
 * per subject). A node subscribes to a topic only while it has local followers. Connect with
 * `noEcho: true` so a node does not receive its own frames back.
 */
export class FrameRelay {
  private readonly pending = new Map<string, string[]>();
  private scheduled = false;
  private readonly follows = new Map<string, { sub: Subscription; count: number }>();
  /** NATS messages sent, frames carried: the batching ratio, for /metrics and the bench. */
  readonly stats = { messages: 0, frames: 0, received: 0, dropped: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly localPublish: (topic: string, frame: string) => void,
    private readonly prefix = 'panthers',
  ) {}

  /** `chat:<id>` -> `panthers.frames.chat.<id>` (topic parts are ids: no dots or wildcards). */
  subject(topic: string): string {
    return `${this.prefix}.frames.${topic.replace(/:/g, '.')}`;
  }

  /** Publishes to this node's sockets now and to other nodes at the end of this turn. */
  publish(topic: string, frame: string): void {
    this.localPublish(topic, frame);
    let q = this.pending.get(topic);
    if (!q) {
      q = [];
      this.pending.set(topic, q);
    }
    q.push(frame);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    for (const [topic, frames] of this.pending) {
      // A busy turn's frames in messages of at most ~MAX_MESSAGE_CHARS: one message past NATS's
      // max_payload (1 MB by default) would be refused whole. Order is kept (one publisher).
      let from = 0;
      let size = 0;
      for (let i = 0; i < frames.length; i++) {
        size += frames[i]!.length + 1;
        if (size >= MAX_MESSAGE_CHARS || i === frames.length - 1) {
          this.send(topic, frames, from, i + 1);
          from = i + 1;
          size = 0;
        }
      }
    }
    this.pending.clear();
  }

  private send(topic: string, frames: string[], from: number, to: number): void {
    try {
      const part = from === 0 && to === frames.length ? frames : frames.slice(from, to);
      this.nc.publish(this.subject(topic), enc.encode(part.join('\n')));
    } catch {
      // The connection is closed or draining (shutdown, a lost link), or one frame alone is over
      // max_payload: frames are at-most-once (a final frame carries the whole reply), and a throw
      // here would be uncaught.
      this.stats.dropped++;
      return;
    }
    this.stats.messages++;
    this.stats.frames += to - from;
  }

  /** A local socket follows the topic: receive other nodes' frames for it (ref-counted). */
  follow(topic: string): void {
    const f = this.follows.get(topic);
    if (f) {
      f.count++;
      return;
    }
    const sub = this.nc.subscribe(this.subject(topic), {
      callback: (err, m) => {
        if (err) return;
        const text = dec.decode(m.data);
        let start = 0;
        for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', start)) {
          this.localPublish(topic, text.slice(start, i));
          this.stats.received++;
          start = i + 1;
        }
        this.localPublish(topic, text.slice(start));
        this.stats.received++;
      },
    });
    this.follows.set(topic, { sub, count: 1 });
  }

  unfollow(topic: string): void {
    const f = this.follows.get(topic);
    if (!f) return;
    if (--f.count > 0) return;
    f.sub.unsubscribe();
    this.follows.delete(topic);
  }
}
