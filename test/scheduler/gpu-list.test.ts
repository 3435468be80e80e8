import { describe, expect, it } from "vitest";
import { GpuIndex, GpuLink, GpuList } from "../../runtime/scheduler/gpu-state.ts";
import { parsePoolSpec } from "../../runtime/scheduler/inventory.ts";
import { seededRandom } from "../../runtime/scheduler/prng.ts";

describe("GpuList", () => {
  it("keeps the order a Set keeps under the same adds and deletes (re-adding one already there keeps its place)", () => {
    const gpus = new GpuIndex(parsePoolSpec("4x8xA10G-24"), 1024).gpus;
    const links = gpus.map((g) => new GpuLink(g));
    const list = new GpuList();
    const set = new Set<number>();
    const random = seededRandom(5);
    for (let step = 0; step < 3000; step++) {
      const i = Math.floor(random() * links.length);
      if (random() < 0.55) {
        list.add(links[i]!);
        set.add(i);
      } else {
        list.delete(links[i]!);
        set.delete(i);
      }
      expect(list.size).toBe(set.size);
    }
    expect(list.toArray().map((g) => g.index)).toEqual([...set]);
  });

  it("refuses a link that is already in another list", () => {
    const g = new GpuIndex(parsePoolSpec("1xA10G-24"), 1024).gpus[0]!;
    const link = new GpuLink(g);
    const a = new GpuList();
    a.add(link);
    expect(() => new GpuList().add(link)).toThrow(/one list at a time/);
    a.delete(link);
    expect(a.size).toBe(0);
    expect(a.first).toBeNull();
  });
});

describe("GpuState end times", () => {
  it("keeps the expected ends of its running stages, one removed per matching end, past its slot count", () => {
    const g = new GpuIndex(parsePoolSpec("1xA10G-24"), 1024).gpus[0]!;
    expect(g.soonestEnd()).toBe(Infinity);
    for (const t of [30.5, 12.25, 12.25, 40]) g.addEnd(t);
    expect(g.runningEnds).toBe(4);
    expect(g.soonestEnd()).toBe(12.25);
    g.removeEnd(12.25);
    expect(g.soonestEnd()).toBe(12.25);
    g.removeEnd(12.25);
    g.removeEnd(99);
    expect(g.runningEnds).toBe(2);
    expect(g.soonestEnd()).toBe(30.5);
  });
});
