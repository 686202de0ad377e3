import type { Publisher } from './ws-server.js';

/**
 * Whether a topic has followers, asked once per chunk: a yes is kept (publishing to a topic its
 * last follower left costs a render, no more), a no is asked again only after some socket
 * subscribed to something. uWS fans the frame out in C++; this keeps the per-chunk JavaScript to
 * a counter compare instead of a topic lookup across the binding.
 */
export function followerCheck(publisher: Publisher, topic: string): () => boolean {
  let followed = false;
  let seen = -1;
  return () => {
    if (followed) return true;
    const n = publisher.subscriptions;
    if (n === seen) return false;
    seen = n;
    return (followed = publisher.subscribers(topic) > 0);
  };
}
