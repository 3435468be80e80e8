import { describe, expect, it } from "vitest";
import { GpuModel, MIG_COMPUTE_SLICES, MIG_MEMORY_SLICES } from "../../constructs/gpu-model.ts";
import { GpuSharing } from "../../constructs/gpu-sharing.ts";
import { ValidationError } from "../../runtime/config/errors.ts";
import { SharingSchema } from "../../runtime/config/schema.ts";

describe("GpuModel", () => {
  it("knows the memory and GPU Feature Discovery product of the built-in models", () => {
    const table = GpuModel.builtIn().map((m) => [m.name, m.product, m.memoryMiB, m.supportsMig]);
    expect(table).toEqual([
      ["H100-80GB", "NVIDIA-H100-80GB-HBM3", 81559, true],
      ["H200-141GB", "NVIDIA-H200", 143771, true],
      ["A100-40GB", "NVIDIA-A100-SXM4-40GB", 40960, true],
      ["A100-80GB", "NVIDIA-A100-SXM4-80GB", 81920, true],
      ["L40S-48GB", "NVIDIA-L40S", 46068, false],
      ["A10G-24GB", "NVIDIA-A10G", 23028, false],
      ["L4-24GB", "NVIDIA-L4", 23034, false],
    ]);
  });

  it("lists the MIG profiles each model offers", () => {
    expect([...GpuModel.A100_40GB.migProfiles.keys()]).toEqual(["1g.5gb", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"]);
    expect([...GpuModel.A100_80GB.migProfiles.keys()]).toEqual(["1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]);
    expect([...GpuModel.H100_80GB.migProfiles.keys()]).toEqual(["1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]);
    expect([...GpuModel.H200_141GB.migProfiles.keys()]).toEqual(["1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"]);
    for (const model of [GpuModel.L40S_48GB, GpuModel.A10G_24GB, GpuModel.L4_24GB]) expect(model.migProfiles.size).toBe(0);
  });

  it("keeps every MIG profile consistent: compute slices from its name, memory within the device, slices within a GPU", () => {
    for (const model of GpuModel.builtIn()) {
      for (const [name, profile] of model.migProfiles) {
        expect(profile.computeSlices, `${model.name} ${name}`).toBe(Number(name.split("g.")[0]));
        expect(profile.computeSlices).toBeLessThanOrEqual(MIG_COMPUTE_SLICES);
        expect(profile.memorySlices).toBeLessThanOrEqual(MIG_MEMORY_SLICES);
        expect(profile.memoryMiB).toBeLessThan(model.memoryMiB);
        // An instance offers less than the nominal size in its name, never more than its memory-slice share.
        expect(profile.memoryMiB).toBeLessThanOrEqual((model.memoryMiB * profile.memorySlices!) / MIG_MEMORY_SLICES);
      }
    }
  });

  it("builds a custom model", () => {
    const model = GpuModel.custom({
      name: "B200-180GB",
      product: "NVIDIA-B200",
      memoryMiB: 183359,
      migProfiles: { "1g.23gb": { computeSlices: 1, memoryMiB: 22528, memorySlices: 1 } },
    });
    expect(model.name).toBe("B200-180GB");
    expect(model.supportsMig).toBe(true);
    expect(model.migProfiles.get("1g.23gb")).toEqual({ computeSlices: 1, memoryMiB: 22528, memorySlices: 1 });
    expect(GpuModel.custom({ name: "RTX-6000", product: "NVIDIA-RTX-6000-Ada-Generation", memoryMiB: 49140 }).supportsMig).toBe(false);
  });

  describe("custom() rejects bad props", () => {
    const good = { name: "X1", product: "NVIDIA-X1", memoryMiB: 1000 };
    const cases: [string, Parameters<typeof GpuModel.custom>[0], RegExp][] = [
      ["name", { ...good, name: "bad name" }, /name: "bad name" is not a model name/],
      ["product", { ...good, product: "NVIDIA X1" }, /product: "NVIDIA X1" is not a label value: give the nvidia.com\/gpu.product value/],
      ["memory", { ...good, memoryMiB: 0 }, /memoryMiB: 0 is not a positive integer/],
      ["profile name", { ...good, migProfiles: { big: { computeSlices: 1, memoryMiB: 10 } } }, /migProfiles\["big"\]: 'big' is not a MIG profile name: write '<compute slices>g.<memory>gb'/],
      ["profile slices", { ...good, migProfiles: { "8g.1gb": { computeSlices: 8, memoryMiB: 10 } } }, /computeSlices: 8 exceeds the 7 compute slices of a GPU/],
      ["profile slices vs name", { ...good, migProfiles: { "2g.1gb": { computeSlices: 1, memoryMiB: 10 } } }, /computeSlices: is 1 but the profile name says 2/],
      ["profile memory", { ...good, migProfiles: { "1g.1gb": { computeSlices: 1, memoryMiB: 2000 } } }, /memoryMiB: 2000 MiB exceeds the model's 1000 MiB/],
      ["memory slices", { ...good, migProfiles: { "1g.1gb": { computeSlices: 1, memoryMiB: 10, memorySlices: 9 } } }, /memorySlices: 9 exceeds the 8 memory slices/],
    ];
    it.each(cases)("%s", (_name, props, message) => {
      expect(() => GpuModel.custom(props)).toThrow(ValidationError);
      expect(() => GpuModel.custom(props)).toThrow(message);
    });
  });
});

describe("GpuSharing", () => {
  it("serializes each mode into the platform config's sharing schema", () => {
    const modes = [GpuSharing.exclusive(), GpuSharing.mig({ "3g.40gb": 2 }), GpuSharing.timeSlicing(4)];
    expect(modes.map((m) => m.toConfig())).toEqual([
      { mode: "exclusive" },
      { mode: "mig", profiles: { "3g.40gb": 2 } },
      { mode: "time-slicing", replicas: 4 },
    ]);
    for (const m of modes) expect(SharingSchema.parse(m.toConfig())).toEqual(m.toConfig());
    expect(modes.map((m) => m.replicas)).toEqual([1, 1, 4]);
  });

  it("copies its profiles so later edits of the caller's object do not leak in", () => {
    const profiles: Record<string, number> = { "1g.10gb": 7 };
    const sharing = GpuSharing.mig(profiles);
    profiles["1g.10gb"] = 1;
    expect(sharing.toConfig()).toEqual({ mode: "mig", profiles: { "1g.10gb": 7 } });
  });

  it.each([
    [1, /replicas: 1 is out of range: give 2 to 64 workloads per GPU \(use GpuSharing.exclusive\(\) for one\)/],
    [65, /replicas: 65 is out of range: give 2 to 64/],
    [2.5, /replicas: 2.5 is not a positive integer/],
    [0, /replicas: 0 is not a positive integer/],
  ])("timeSlicing(%s) is rejected", (replicas, message) => {
    expect(() => GpuSharing.timeSlicing(replicas)).toThrow(ValidationError);
    expect(() => GpuSharing.timeSlicing(replicas)).toThrow(message);
  });

  it("accepts the bounds of time-slicing", () => {
    expect(GpuSharing.timeSlicing(2).replicas).toBe(2);
    expect(GpuSharing.timeSlicing(64).replicas).toBe(64);
  });

  it.each([
    [{}, /profiles: is empty: give at least one profile/],
    [{ "3g.40gb": 0 }, /profiles\["3g.40gb"\]: 0 is not a positive integer/],
    [{ "3g": 1 }, /profiles\["3g"\]: '3g' is not a MIG profile name/],
  ])("mig(%j) is rejected", (profiles, message) => {
    expect(() => GpuSharing.mig(profiles)).toThrow(message);
  });
});
