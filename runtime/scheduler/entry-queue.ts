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
 * are kept beside it in one typed array (four numbers a slot), so a sift compares numbers in
 * contiguous memory instead of reaching into entry objects scattered over a large heap, where
 * cache misses dominated.
 * The order is a method of the one class, so the sift loops inline it.
 */
export class EntryQueue<T extends SortFields> {
  private readonly items: T[] = [];
  /** Per slot i: vt, seq, key and index at 4i .. 4i + 3. */
  private f = new Float64Array(32);

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

  /** before() for the fields given against the entry in the slot at offset j (4 × slot). */
  private beforeSlot(vt: number, seq: number, key: number, index: number, j: number): boolean {
    const f = this.f;
    const kj = f[j + 2]!;
    if (this.batch && key !== kj) return key > kj;
    const vj = f[j]!;
    if (vt !== vj) return vt < vj;
    const sj = f[j + 1]!;
    if (seq !== sj) return seq < sj;
    if (key !== kj) return key > kj;
    return index < f[j + 3]!;
  }

  /** before() for the entries at slot offsets i and j. */
  private slotBefore(i: number, j: number): boolean {
    const f = this.f;
    return this.beforeSlot(f[i]!, f[i + 1]!, f[i + 2]!, f[i + 3]!, j);
  }

  /** Moves slot `from` to slot `to` (slot numbers). */
  private move(from: number, to: number): void {
    this.items[to] = this.items[from]!;
    const f = this.f;
    const a = from << 2;
    const b = to << 2;
    f[b] = f[a]!;
    f[b + 1] = f[a + 1]!;
    f[b + 2] = f[a + 2]!;
    f[b + 3] = f[a + 3]!;
  }

  private place(item: T, vt: number, seq: number, key: number, index: number, to: number): void {
    this.items[to] = item;
    const f = this.f;
    const b = to << 2;
    f[b] = vt;
    f[b + 1] = seq;
    f[b + 2] = key;
    f[b + 3] = index;
  }

  push(item: T): void {
    const items = this.items;
    let i = items.length;
    if (i << 2 === this.f.length) {
      const f = new Float64Array(this.f.length * 2);
      f.set(this.f);
      this.f = f;
    }
    items.push(item);
    const { vt, seq, key, index } = item;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.beforeSlot(vt, seq, key, index, parent << 2)) break;
      this.move(parent, i);
      i = parent;
    }
    this.place(item, vt, seq, key, index, i);
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    const n = items.length;
    if (n === 0 || last === undefined) return top;
    const f = this.f;
    const m = n << 2;
    const vt = f[m]!;
    const seq = f[m + 1]!;
    const key = f[m + 2]!;
    const index = f[m + 3]!;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.slotBefore(right << 2, left << 2) ? right : left;
      // Slot n still holds the moved entry's fields (items was shortened, the array was not).
      if (!this.slotBefore(child << 2, m)) break;
      this.move(child, i);
      i = child;
    }
    this.place(last, vt, seq, key, index, i);
    return top;
  }
}
