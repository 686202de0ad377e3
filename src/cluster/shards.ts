/**
 * NFTs hash to a fixed number of shards (Akka's advice: about ten per node, and more than the
 * largest cluster); an NFT's DeploymentActor and AgentActor share its shard, so one node owns both.
 */
export const SHARDS = 256;

/** FNV-1a (32-bit) of the NFT id, mod SHARDS: stable across nodes and releases. */
export function shardOf(nft: string, shards = SHARDS): number {
  return fnv1a(nft) % shards;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** MurmurHash3's finalizer: FNV-1a alone scores similar strings alike, which skews placement. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Rendezvous (highest random weight) hashing: which live node should own a shard. A hint for
 * placement only: the lease claim in PostgreSQL decides. When a node joins or leaves, only the
 * shards whose winner changes move (about 1/N of them).
 */
export function preferredOwner(shard: number, nodes: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const n of nodes) {
    const score = mix(fnv1a(`${n}#${shard}`));
    if (score > bestScore || (score === bestScore && best !== undefined && n < best)) {
      best = n;
      bestScore = score;
    }
  }
  return best;
}
