/** The scheduler's per-tenant, per-level queues of ready stages: binary min-heaps in dispatch order. */

/** What an entry is ordered by: its run's virtual time and submission, its rank, its index in the run. */
export interface SortFields {
  readonly vt: number;
  readonly seq: number;
  readonly key: number;
  readonly index: number;
}

/**
 * A binary min-heap of queue entries in dispatch order. The sort fields of the entry in each slot
 * are kept beside it in typed arrays, so a sift compares numbers in a few contiguous arrays
 * instead of reaching into entry objects scattered over a large heap (cache misses dominated).
 * The order is a method of the one class, so the sift loops inline it.
 */
export class EntryQueue<T extends SortFields> {
  private items: T[] = [];
  private vt = new Float64Array(8);
  private seq = new Float64Array(8);
  private key = new Float64Array(8);
  private idx = new Float64Array(8);

  constructor(private readonly batch: boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /**
   * Dispatch order inside a queue level: run order (virtual time, then submission), then rank.
   * Fresh batch work goes longest remaining path first across runs (upward rank), so a run whose
   * first stage leads to long work on scarce GPUs starts it early; aged work goes back to run order.
   */
  before(a: SortFields, b: SortFields): boolean {
    if (this.batch && a.key !== b.key) return a.key > b.key;
    if (a.vt !== b.vt) return a.vt < b.vt;
    if (a.seq !== b.seq) return a.seq < b.seq;
    if (a.key !== b.key) return a.key > b.key;
    return a.index < b.index;
  }

  /** before() for the fields given against the entry in slot j. */
  private beforeSlot(vt: number, seq: number, key: number, index: number, j: number): boolean {
    const kj = this.key[j]!;
    if (this.batch && key !== kj) return key > kj;
    const vj = this.vt[j]!;
    if (vt !== vj) return vt < vj;
    const sj = this.seq[j]!;
    if (seq !== sj) return seq < sj;
    if (key !== kj) return key > kj;
    return index < this.idx[j]!;
  }

  /** before() for the entries in slots i and j. */
  private slotBefore(i: number, j: number): boolean {
    return this.beforeSlot(this.vt[i]!, this.seq[i]!, this.key[i]!, this.idx[i]!, j);
  }

  private move(from: number, to: number): void {
    this.items[to] = this.items[from]!;
    this.vt[to] = this.vt[from]!;
    this.seq[to] = this.seq[from]!;
    this.key[to] = this.key[from]!;
    this.idx[to] = this.idx[from]!;
  }

  private place(item: T, vt: number, seq: number, key: number, index: number, to: number): void {
    this.items[to] = item;
    this.vt[to] = vt;
    this.seq[to] = seq;
    this.key[to] = key;
    this.idx[to] = index;
  }

  private grow(): void {
    const size = this.vt.length * 2;
    const vt = new Float64Array(size);
    vt.set(this.vt);
    this.vt = vt;
    const seq = new Float64Array(size);
    seq.set(this.seq);
    this.seq = seq;
    const key = new Float64Array(size);
    key.set(this.key);
    this.key = key;
    const idx = new Float64Array(size);
    idx.set(this.idx);
    this.idx = idx;
  }

  push(item: T): void {
    const items = this.items;
    let i = items.length;
    if (i === this.vt.length) this.grow();
    items.push(item);
    const { vt, seq, key, index } = item;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.beforeSlot(vt, seq, key, index, parent)) break;
      this.move(parent, i);
      i = parent;
    }
    this.place(item, vt, seq, key, index, i);
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const n = items.length - 1;
    if (n <= 0) {
      items.length = 0;
      return top;
    }
    const last = items[n]!;
    const vt = this.vt[n]!;
    const seq = this.seq[n]!;
    const key = this.key[n]!;
    const index = this.idx[n]!;
    items.length = n;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.slotBefore(right, left) ? right : left;
      // Slot n still holds the moved entry's fields (items was shortened, the arrays were not).
      if (!this.slotBefore(child, n)) break;
      this.move(child, i);
      i = child;
    }
    this.place(last, vt, seq, key, index, i);
    return top;
  }
}
