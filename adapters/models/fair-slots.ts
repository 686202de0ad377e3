/**
 * A fixed number of slots shared by tenants (NFTs), handed out round-robin among the tenants
 * that wait, with a cap per tenant: one NFT with many turns cannot hold every slot while another
 * waits, and waiters of one tenant are served in order.
 */
export class FairSlots {
  private free: number;
  private readonly waiting = new Map<string, (() => void)[]>();
  private readonly inUse = new Map<string, number>();
  /** tenants with waiters, in the order they are served */
  private ring: string[] = [];

  constructor(readonly size: number, readonly perTenant = size > 1 ? Math.ceil(size / 2) : 1) {
    this.free = size;
  }

  get available(): number {
    return this.free;
  }

  /** Resolves with a release function once a slot is this tenant's; rejects when the signal aborts first. */
  acquire(tenant: string, signal?: AbortSignal): Promise<() => void> {
    if (this.free > 0 && (this.inUse.get(tenant) ?? 0) < this.perTenant && !this.waiting.has(tenant)) {
      return Promise.resolve(this.take(tenant));
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.take(tenant));
      };
      const onAbort = () => {
        const q = this.waiting.get(tenant);
        const i = q ? q.indexOf(grant) : -1;
        if (q && i >= 0) {
          q.splice(i, 1);
          if (q.length === 0) this.dropTenant(tenant);
        }
        reject(signal!.reason ?? new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      let q = this.waiting.get(tenant);
      if (!q) {
        q = [];
        this.waiting.set(tenant, q);
        this.ring.push(tenant);
      }
      q.push(grant);
    });
  }

  private take(tenant: string): () => void {
    this.free--;
    this.inUse.set(tenant, (this.inUse.get(tenant) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.free++;
      const n = (this.inUse.get(tenant) ?? 1) - 1;
      if (n === 0) this.inUse.delete(tenant);
      else this.inUse.set(tenant, n);
      this.dispatch();
    };
  }

  private dispatch(): void {
    for (let tries = this.ring.length; this.free > 0 && tries > 0; tries--) {
      const tenant = this.ring.shift()!;
      const q = this.waiting.get(tenant)!;
      if ((this.inUse.get(tenant) ?? 0) >= this.perTenant) {
        this.ring.push(tenant);
        continue;
      }
      const grant = q.shift()!;
      if (q.length === 0) this.waiting.delete(tenant);
      else this.ring.push(tenant); // back of the ring: the others go first
      grant();
      tries = this.ring.length + 1;
    }
  }

  private dropTenant(tenant: string): void {
    this.waiting.delete(tenant);
    this.ring = this.ring.filter((t) => t !== tenant);
  }
}
