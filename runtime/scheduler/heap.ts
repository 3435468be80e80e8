/** A binary min-heap ordered by `before(a, b)` (true when a must come out first). */
export class Heap<T> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(item, items[parent]!)) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    const n = items.length;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.before(items[right]!, items[left]!) ? right : left;
      if (!this.before(items[child]!, last)) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }
}

/**
 * A min-queue by `due` for items pushed mostly in order of `due` (times that only move forward):
 * those go to a FIFO in O(1); one pushed earlier than the last goes to a heap. Items with equal
 * `due` come out in no particular order.
 */
export class DueQueue<T extends { readonly due: number }> {
  private fifo: T[] = [];
  private head = 0;
  private readonly late = new Heap<T>((a, b) => a.due < b.due);

  get size(): number {
    return this.fifo.length - this.head + this.late.size;
  }

  push(item: T): void {
    const fifo = this.fifo;
    if (fifo.length === this.head || fifo[fifo.length - 1]!.due <= item.due) fifo.push(item);
    else this.late.push(item);
  }

  peek(): T | undefined {
    const first = this.head < this.fifo.length ? this.fifo[this.head] : undefined;
    const late = this.late.peek();
    if (late !== undefined && (first === undefined || late.due < first.due)) return late;
    return first;
  }

  pop(): T | undefined {
    const first = this.head < this.fifo.length ? this.fifo[this.head] : undefined;
    const late = this.late.peek();
    if (late !== undefined && (first === undefined || late.due < first.due)) return this.late.pop();
    if (first === undefined) return undefined;
    this.head++;
    // Drop the consumed prefix now and then, so the array does not grow without bound.
    if (this.head >= 1024 && this.head * 2 >= this.fifo.length) {
      this.fifo = this.fifo.slice(this.head);
      this.head = 0;
    }
    return first;
  }
}
