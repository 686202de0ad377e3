/** Small statistics over samples. Everything here is pure so the harness can test it directly. */

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Linear-interpolated quantile (q in [0,1]) of the finite samples; NaN when there are none. */
export function quantile(xs: readonly number[], q: number): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function p99(xs: readonly number[]): number {
  return quantile(xs, 0.99);
}

/**
 * The median of per-round ratios a[i]/b[i]: rounds are interleaved, so each pair shares the
 * machine's state at that moment, and the ratio holds where absolute figures drift.
 */
export function medianRatio(project: readonly number[], peer: readonly number[]): number {
  const rs: number[] = [];
  for (let i = 0; i < Math.min(project.length, peer.length); i++) {
    const a = project[i]!;
    const b = peer[i]!;
    if (Number.isFinite(a) && Number.isFinite(b) && b !== 0) rs.push(a / b);
  }
  return median(rs);
}

/** Fixed-size latency recorder: a histogram with 0.1 ms buckets up to 10 s, cheap to merge. */
export class LatencyHistogram {
  static readonly BUCKET_MS = 0.1;
  static readonly BUCKETS = 100_000;
  readonly counts: Uint32Array;
  count = 0;
  max = 0;

  constructor(counts?: ArrayLike<number>) {
    this.counts = new Uint32Array(LatencyHistogram.BUCKETS);
    if (counts) {
      for (let i = 0; i < counts.length && i < this.counts.length; i++) {
        this.counts[i] = counts[i]!;
        this.count += counts[i]!;
        if (counts[i]) this.max = (i + 1) * LatencyHistogram.BUCKET_MS;
      }
    }
  }

  record(ms: number): void {
    const v = ms < 0 ? 0 : ms;
    const i = Math.min(LatencyHistogram.BUCKETS - 1, Math.floor(v / LatencyHistogram.BUCKET_MS));
    this.counts[i]!++;
    this.count++;
    if (v > this.max) this.max = v;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i]!;
    this.count += other.count;
    this.max = Math.max(this.max, other.max);
  }

  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const target = Math.ceil(this.count * q);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return (i + 1) * LatencyHistogram.BUCKET_MS;
    }
    return this.max;
  }

  /** Sparse form for sending between processes: [bucket, count] pairs. */
  toSparse(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]) out.push([i, this.counts[i]!]);
    return out;
  }

  static fromSparse(pairs: [number, number][]): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const [i, c] of pairs) {
      h.counts[i] = c;
      h.count += c;
      h.max = Math.max(h.max, (i + 1) * LatencyHistogram.BUCKET_MS);
    }
    return h;
  }
}
