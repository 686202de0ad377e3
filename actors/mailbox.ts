/**
 * A FIFO queue with O(1) push and shift: an array read from a moving head index, compacted when
 * the consumed part is both large and most of the array (amortized O(1) per message).
 * `Array.prototype.shift` moves the whole array on every call: 50,000 queued messages cost
 * 50,000 moves each, which took one actor from ~459k to 7k messages/s.
 * The array is made on the first push and dropped by release(): an idle actor holds none (an
 * emptied array keeps its backing store, ~90 bytes per idle actor times a million actors).
 */
export class Mailbox<T> {
  private items: (T | undefined)[] | undefined = undefined;
  private head = 0;

  get length(): number {
    return this.items === undefined ? 0 : this.items.length - this.head;
  }

  push(item: T): void {
    if (this.items === undefined) this.items = [item];
    else this.items.push(item);
  }

  /** The oldest item, or undefined when empty. */
  shift(): T | undefined {
    const items = this.items;
    if (items === undefined || this.head >= items.length) return undefined;
    const item = items[this.head];
    items[this.head++] = undefined; // let it be collected
    if (this.head === items.length) {
      // Emptied (the common case: one message at a time): reuse the array, allocate nothing.
      items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes and returns everything queued, oldest first. */
  takeAll(): T[] {
    const items = this.items;
    const out = (items === undefined ? [] : this.head === 0 ? items : items.slice(this.head)) as T[];
    this.items = undefined;
    this.head = 0;
    return out;
  }

  /** Drops the (empty) array: the next push makes a new one. */
  dropBuffer(): void {
    if (this.length === 0) {
      this.items = undefined;
      this.head = 0;
    }
  }
}
