import { describe, expect, it } from "vitest";
import { DueQueue } from "../../runtime/scheduler/heap.ts";
import { seededRandom } from "../../runtime/scheduler/prng.ts";

describe("DueQueue", () => {
  it("gives items back earliest due first, whether pushed in order or not", () => {
    const q = new DueQueue<{ due: number; id: number }>();
    const random = seededRandom(7);
    const pushed: number[] = [];
    let t = 0;
    for (let i = 0; i < 5000; i++) {
      // Mostly forward in time, sometimes an earlier due (a stage queued again with its old due).
      t += Math.floor(random() * 3);
      const due = random() < 0.1 ? t - Math.floor(random() * 50) : t;
      q.push({ due, id: i });
      pushed.push(due);
      // Interleave pops below the pushed times, as the scheduler does.
      if (i % 7 === 0) {
        const min = Math.min(...pushed);
        expect(q.pop()!.due).toBe(min);
        pushed.splice(pushed.indexOf(min), 1);
      }
    }
    expect(q.size).toBe(pushed.length);
    const out: number[] = [];
    while (q.size > 0) {
      const next = q.peek()!.due;
      expect(q.pop()!.due).toBe(next);
      out.push(next);
    }
    expect(out).toEqual(pushed.sort((a, b) => a - b));
  });

  it("drains in nondecreasing due order", () => {
    const q = new DueQueue<{ due: number }>();
    for (const due of [5, 5, 6, 3, 9, 9, 1, 10]) q.push({ due });
    const out: number[] = [];
    for (let x = q.pop(); x !== undefined; x = q.pop()) out.push(x.due);
    expect(out).toEqual([1, 3, 5, 5, 6, 9, 9, 10]);
    expect(q.peek()).toBeUndefined();
  });
});
