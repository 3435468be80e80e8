import { describe, expect, it } from "vitest";
import { EntryQueue } from "../../runtime/scheduler/entry-queue.ts";
import { seededRandom } from "../../runtime/scheduler/prng.ts";

interface E {
  readonly vt: number;
  readonly seq: number;
  readonly key: number;
  readonly index: number;
  readonly id: number;
}

describe("EntryQueue", () => {
  for (const batch of [true, false]) {
    it(`gives entries back in dispatch order, pushes and pops interleaved (${batch ? "batch" : "run"} order)`, () => {
      const random = seededRandom(batch ? 11 : 12);
      const q = new EntryQueue<E>(batch);
      const held: E[] = [];
      const order = (a: E, b: E) => (q.before(a, b) ? -1 : q.before(b, a) ? 1 : 0);
      let id = 0;
      for (let i = 0; i < 4000; i++) {
        // Few distinct values, so every tie-break is exercised; fractional times and ranks as the scheduler has them.
        const e: E = { vt: Math.floor(random() * 5) * 0.5, seq: Math.floor(random() * 6), key: Math.floor(random() * 4) * 1.25, index: Math.floor(random() * 5), id: id++ };
        q.push(e);
        held.push(e);
        if (random() < 0.4) {
          held.sort(order);
          const got = q.pop()!;
          // Equal entries may come out in any order; the first must be one of them.
          expect(order(got, held[0]!)).toBe(0);
          held.splice(held.indexOf(got), 1);
        }
        expect(q.size).toBe(held.length);
      }
      held.sort(order);
      const out: E[] = [];
      while (q.size > 0) {
        expect(q.peek()).toBe(q.peek());
        out.push(q.pop()!);
      }
      expect(q.pop()).toBeUndefined();
      expect(out.map((e) => [e.vt, e.seq, e.key, e.index])).toEqual(held.map((e) => [e.vt, e.seq, e.key, e.index]));
    });
  }

  it("orders fresh batch work by rank first, other levels by run first", () => {
    const early = { vt: 0, seq: 0, key: 1, index: 0 };
    const long = { vt: 5, seq: 1, key: 9, index: 0 };
    expect(new EntryQueue(true).before(long, early)).toBe(true);
    expect(new EntryQueue(false).before(early, long)).toBe(true);
  });
});
