/** The GPU history's ring: bounded, ordered, coarser for long windows, measured where nvidia-smi was read. */
import { describe, expect, it } from "vitest";
import { GpuHistory, HISTORY_MAX_POINTS, parseUseQuery } from "../../../runtime/agent/service/gpu-history.ts";
import type { GpuDevice } from "../../../runtime/agent/inventory/types.ts";

const SIM: GpuDevice = { id: "n0-g0", node: "n0", index: 0, name: "sim", memoryMiB: 24_576, memoryUsedMiB: 0, uuid: null, simulated: true };
const REAL: GpuDevice = { id: "n0-g1", node: "n0", index: 1, name: "NVIDIA L4", memoryMiB: 23_034, memoryUsedMiB: 0, uuid: "GPU-aaaa", simulated: false };

function clocked(options: { maxAgeMs: number; stepMs: number; measure?: () => Promise<ReadonlyMap<string, { usedMiB: number | undefined; utilPercent: number | undefined }>> }) {
  let now = 1_000_000_000_000;
  let reserved = 0;
  const history = new GpuHistory({ devices: [SIM, REAL], reservedMiB: () => new Map([[SIM.id, reserved], [REAL.id, reserved]]), now: () => now, ...options });
  return {
    history,
    async tick(mib: number) {
      reserved = mib;
      await history.sample();
      now += options.stepMs;
    },
  };
}

describe("GpuHistory", () => {
  it("keeps at most maxAge / step samples per device, the newest, oldest first", async () => {
    const h = clocked({ stepMs: 5000, maxAgeMs: 60_000 });
    for (let i = 0; i < 30; i++) await h.tick(i);
    expect(h.history.capacity).toBe(12);
    const read = h.history.read(1440);
    expect(read.stepSeconds).toBe(5);
    const sim = read.devices.find((d) => d.id === SIM.id)!;
    expect(sim.samples.map((s) => s[3])).toEqual([18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
    expect(sim).toMatchObject({ simulated: true, measured: false, totalMiB: 24_576 });
    // The window asked for: the last minute holds all 12; 20 s only the last 4 or 5.
    expect(h.history.read(0.34).devices[0]!.samples.length).toBeLessThanOrEqual(5);
  });

  it("answers long windows in coarser steps, each the busiest of the samples it stands for", async () => {
    const h = clocked({ stepMs: 1000, maxAgeMs: 3_600_000 });
    for (let i = 0; i < HISTORY_MAX_POINTS * 3; i++) await h.tick(i % 3 === 1 ? 900 : 100);
    const read = h.history.read(60);
    expect(read.stepSeconds).toBe(3);
    expect(read.devices[0]!.samples).toHaveLength(HISTORY_MAX_POINTS);
    for (const s of read.devices[0]!.samples) expect(s[1]).toBe(900);
  });

  it("takes nvidia-smi's reading for a real GPU, and the reservation where there is none", async () => {
    const h = clocked({ stepMs: 5000, maxAgeMs: 60_000, measure: async () => new Map([["GPU-aaaa", { usedMiB: 4321, utilPercent: 87 }]]) });
    await h.tick(1024);
    const [sim, real] = h.history.read(60).devices;
    expect(real).toMatchObject({ measured: true, simulated: false });
    expect(real!.samples[0]!.slice(1)).toEqual([4321, 87, 1024]);
    expect(sim!.samples[0]!.slice(1)).toEqual([1024, null, 1024]);
  });

  it("reads nvidia-smi's use query, unknown values as such", () => {
    const parsed = parseUseQuery("GPU-aaaa, 4321, 87\r\nGPU-bbbb, [N/A], [Not Supported]\nnot a line\n");
    expect([...parsed.entries()]).toEqual([
      ["GPU-aaaa", { usedMiB: 4321, utilPercent: 87 }],
      ["GPU-bbbb", { usedMiB: undefined, utilPercent: undefined }],
    ]);
  });
});
