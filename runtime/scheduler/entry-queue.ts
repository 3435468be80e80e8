/** The scheduler's per-tenant, per-level queues of ready stages: binary min-heaps in dispatch order. */

/** Slot layout: the sort fields (run's virtual time, run's submission, rank, index in the run), then token and due. */
const VT = 0;
const SEQ = 1;
const KEY = 2;
const INDEX = 3;
const TOKEN = 4;
const DUE = 5;
const STRIDE = 6;

/**
 * A binary min-heap of queued items (the scheduler's stages) in dispatch order. There is no entry
 * object per queued item: each slot holds the item and, side by side in one typed array, the
 * numbers it is ordered by plus the item's token when queued (a later token makes the slot stale)
 * and when aging lifts it. Sifts then compare contiguous numbers instead of reaching into objects
 * scattered over a large heap (cache misses dominated), and queueing allocates nothing.
 */
export class EntryQueue<T> {
  private readonly items: T[] = [];
  private f = new Float64Array(8 * STRIDE);

  constructor(private readonly batch: boolean) {}

  get size(): number {
    return this.items.length;
  }

  /** The first item (undefined when empty); its slot's token and due are topToken() and topDue(). */
  peek(): T | undefined {
    return this.items[0];
  }

  topToken(): number {
    return this.f[TOKEN]!;
  }

  topDue(): number {
    return this.f[DUE]!;
  }

  /** Whether this queue's first item comes out before `other`'s (both non-empty; this queue's order). */
  topBefore(other: EntryQueue<T>): boolean {
    const g = other.f;
    return this.slotBefore(0, g[VT]!, g[SEQ]!, g[KEY]!, g[INDEX]!);
  }

  /**
   * Dispatch order inside a queue level, for the slot at offset i against the fields given: run
   * order (virtual time, then submission), then rank. Fresh batch work goes longest remaining path
   * first across runs (upward rank), so a run whose first stage leads to long work on scarce GPUs
   * starts it early; aged work goes back to run order.
   */
  private slotBefore(i: number, vt: number, seq: number, key: number, index: number): boolean {
    const f = this.f;
    const ki = f[i + KEY]!;
    if (this.batch && ki !== key) return ki > key;
    const vi = f[i + VT]!;
    if (vi !== vt) return vi < vt;
    const si = f[i + SEQ]!;
    if (si !== seq) return si < seq;
    if (ki !== key) return ki > key;
    return f[i + INDEX]! < index;
  }

  /** The fields given against the slot at offset j: whether they come out first. */
  private fieldsBefore(vt: number, seq: number, key: number, index: number, j: number): boolean {
    const f = this.f;
    const kj = f[j + KEY]!;
    if (this.batch && key !== kj) return key > kj;
    const vj = f[j + VT]!;
    if (vt !== vj) return vt < vj;
    const sj = f[j + SEQ]!;
    if (seq !== sj) return seq < sj;
    if (key !== kj) return key > kj;
    return index < f[j + INDEX]!;
  }

  /** Copies slot `from` to slot `to` (slot numbers). */
  private move(from: number, to: number): void {
    this.items[to] = this.items[from]!;
    const f = this.f;
    const a = from * STRIDE;
    const b = to * STRIDE;
    for (let k = 0; k < STRIDE; k++) f[b + k] = f[a + k]!;
  }

  push(item: T, vt: number, seq: number, key: number, index: number, token: number, due: number): void {
    const items = this.items;
    let i = items.length;
    if ((i + 1) * STRIDE > this.f.length) {
      const f = new Float64Array(this.f.length * 2);
      f.set(this.f);
      this.f = f;
    }
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.fieldsBefore(vt, seq, key, index, parent * STRIDE)) break;
      this.move(parent, i);
      i = parent;
    }
    items[i] = item;
    const f = this.f;
    const b = i * STRIDE;
    f[b + VT] = vt;
    f[b + SEQ] = seq;
    f[b + KEY] = key;
    f[b + INDEX] = index;
    f[b + TOKEN] = token;
    f[b + DUE] = due;
  }

  /** Removes and returns the first item (read topToken() and topDue() before, when needed). */
  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    const n = items.length;
    if (n === 0 || last === undefined) return top;
    const f = this.f;
    // The last slot's numbers stay in place (only items was shortened) while it sifts down from the root.
    const m = n * STRIDE;
    const vt = f[m + VT]!;
    const seq = f[m + SEQ]!;
    const key = f[m + KEY]!;
    const index = f[m + INDEX]!;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n) {
        const l = left * STRIDE;
        if (this.slotBefore(right * STRIDE, f[l + VT]!, f[l + SEQ]!, f[l + KEY]!, f[l + INDEX]!)) child = right;
      }
      if (!this.slotBefore(child * STRIDE, vt, seq, key, index)) break;
      this.move(child, i);
      i = child;
    }
    items[i] = last;
    const b = i * STRIDE;
    for (let k = 0; k < STRIDE; k++) f[b + k] = f[m + k]!;
    return top;
  }
}
