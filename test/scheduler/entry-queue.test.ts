import { describe, expect, it } from "vitest";
import { EntryQueue } from "../../runtime/scheduler/entry-queue.ts";
import { seededRandom } from "../../runtime/scheduler/prng.ts";

interface E {
  readonly vt: number;
  readonly seq: number;
  readonly key: number;
  readonly index: number;
  readonly token: number;
  readonly due: number;
}

/** The dispatch order, written out: fresh batch work by rank first, other levels by run first. */
const before = (batch: boolean) => (a: E, b: E): number => {
  if (batch && a.key !== b.key) return b.key - a.key;
  if (a.vt !== b.vt) return a.vt - b.vt;
  if (a.seq !== b.seq) return a.seq - b.seq;
  if (a.key !== b.key) return b.key - a.key;
  return a.index - b.index;
};

const push = (q: EntryQueue<E>, e: E) => q.push(e, e.vt, e.seq, e.key, e.index, e.token, e.due);

describe("EntryQueue", () => {
  for (const batch of [true, false]) {
    it(`gives items back in dispatch order with their token and due, pushes and pops interleaved (${batch ? "batch" : "run"} order)`, () => {
      const random = seededRandom(batch ? 11 : 12);
      const q = new EntryQueue<E>(batch);
      const order = before(batch);
      const held: E[] = [];
      let n = 0;
      const take = () => {
        const token = q.topToken();
        const due = q.topDue();
        const got = q.pop()!;
        // The slot's numbers travel with its item through every sift.
        expect([token, due]).toEqual([got.token, got.due]);
        return got;
      };
      for (let i = 0; i < 4000; i++) {
        // Few distinct values, so every tie-break is exercised; fractional times and ranks as the scheduler has them.
        const e: E = { vt: Math.floor(random() * 5) * 0.5, seq: Math.floor(random() * 6), key: Math.floor(random() * 4) * 1.25, index: Math.floor(random() * 5), token: n++, due: random() * 1000 };
        push(q, e);
        held.push(e);
        if (random() < 0.4) {
          held.sort(order);
          const got = take();
          // Equal items may come out in any order; the first must be one of them.
          expect(order(got, held[0]!)).toBe(0);
          held.splice(held.indexOf(got), 1);
        }
        expect(q.size).toBe(held.length);
      }
      held.sort(order);
      const out: E[] = [];
      while (q.size > 0) out.push(take());
      expect(q.pop()).toBeUndefined();
      expect(out.map((e) => [e.vt, e.seq, e.key, e.index])).toEqual(held.map((e) => [e.vt, e.seq, e.key, e.index]));
    });
  }

  it("compares the first items of two queues in the queue's own order", () => {
    const early: E = { vt: 0, seq: 0, key: 1, index: 0, token: 0, due: 0 };
    const long: E = { vt: 5, seq: 1, key: 9, index: 0, token: 0, due: 0 };
    for (const batch of [true, false]) {
      const a = new EntryQueue<E>(batch);
      const b = new EntryQueue<E>(batch);
      push(a, long);
      push(b, early);
      // Fresh batch work goes longest path first; other levels keep run order.
      expect(a.topBefore(b)).toBe(batch);
      expect(b.topBefore(a)).toBe(!batch);
    }
  });
});
