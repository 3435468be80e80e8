/**
 * A fixed CPU-bound JavaScript loop to divide the scheduler's decisions/s by, so the figure says how
 * fast the scheduler is relative to this machine's speed at JavaScript rather than the machine's
 * speed itself: a binary min-heap of numbers (push 4,096 pseudo-random keys, then pop and push
 * alternately), the same kind of work as the scheduler's queues. Its code is frozen here, not the
 * project's Heap, so a change to the project cannot move the yardstick.
 */

/** Heap operations per call of `referenceLoop` (one push or one pop each). */
export const REFERENCE_LOOP_OPS = 400_000;

/** Runs the loop once and returns a checksum (kept, so the work cannot be optimised away). */
export function referenceLoop(): number {
  const heap = new Float64Array(4096 + 1);
  let size = 0;
  let state = 0x9e3779b9;
  const next = () => {
    // xorshift32: the same keys every call.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const push = (x: number) => {
    let i = size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! <= x) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = x;
  };
  const pop = () => {
    const top = heap[0]!;
    const last = heap[--size]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && heap[child + 1]! < heap[child]!) child++;
      if (heap[child]! >= last) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  };
  let sum = 0;
  for (let k = 0; k < 4096; k++) push(next());
  for (let k = 0; k < (REFERENCE_LOOP_OPS - 4096) / 2; k++) {
    sum += pop();
    push(next());
  }
  return sum;
}

/** Heap operations per second of one timed call (after the caller's warm-up). */
export function referenceLoopOpsPerS(): number {
  const t0 = performance.now();
  const checksum = referenceLoop();
  const ms = performance.now() - t0;
  if (!Number.isFinite(checksum)) throw new Error("reference loop: checksum is not a number");
  return REFERENCE_LOOP_OPS / (ms / 1000);
}
