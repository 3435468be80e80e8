import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PoolSchema, type PoolConfig } from "../../runtime/config/schema.ts";
import {
  COMPUTE_APPS_ARGS,
  GPU_LIST_ARGS,
  GPU_QUERY_ARGS,
  InventoryError,
  NvidiaSmiVramSampler,
  attributeVram,
  discoverGpus,
  migProfileMemoryMiB,
  parseComputeApps,
  parseGpuList,
  parseGpuQuery,
  processGroupOf,
  visibleDeviceId,
} from "../../runtime/agent/inventory/index.ts";
import { fakeNvidiaSmi, removeFakeNvidiaSmis } from "./fixtures/fake-nvidia-smi.ts";
import { A100_MIG_LIST, A100_MIG_QUERY, DRIVER_FAILURE, H100_LIST, H100_QUERY, OLD_DRIVER_MIG_LIST } from "./fixtures/nvidia-smi-samples.ts";

const QUERY = GPU_QUERY_ARGS.join(" ");
const LIST = GPU_LIST_ARGS.join(" ");
const APPS = COMPUTE_APPS_ARGS.join(" ");

const pool: PoolConfig = PoolSchema.parse({
  name: "render-h100",
  gpu: { model: "H100-80GB", product: "NVIDIA-H100-80GB-HBM3", memoryMiB: 81559 },
  nodes: 1,
  gpusPerNode: 2,
  sharing: { mode: "exclusive" },
  devices: [
    { id: "render-h100-n0-g0", node: "render-h100-n0", index: 0, memoryMiB: 81559 },
    { id: "render-h100-n0-g1", node: "render-h100-n0", index: 1, memoryMiB: 81559 },
  ],
  nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" },
  priorityClasses: { interactive: "gpufabric-interactive", batch: "gpufabric-batch" },
  tenantQuotas: {},
});

const emptyDirs: string[] = [];
afterAll(() => {
  emptyDirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  removeFakeNvidiaSmis();
});
function emptyPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "gpufabric-nopath-"));
  emptyDirs.push(dir);
  return dir;
}

describe("nvidia-smi parsers", () => {
  it("reads --query-gpu rows", () => {
    const { rows, skipped } = parseGpuQuery(H100_QUERY);
    expect(skipped).toEqual([]);
    expect(rows).toEqual([
      { index: 0, uuid: "GPU-5e9b0b7c-3b0a-4f4e-a1b2-0c1d2e3f4a5b", name: "NVIDIA H100 80GB HBM3", memoryTotalMiB: 81559, memoryUsedMiB: 1 },
      { index: 1, uuid: "GPU-9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4", name: "NVIDIA H100 80GB HBM3", memoryTotalMiB: 81559, memoryUsedMiB: 40213 },
    ]);
  });

  it("reads CRLF, [N/A] values and commas in product names, and reports lines it cannot read", () => {
    const { rows, skipped } = parseGpuQuery(
      `${A100_MIG_QUERY}\r\n2, GPU-aaaa-bbbb, Quadro RTX 8000, Rev 2, 48601, 12\r\nnot a gpu line\r\n3, MIG-1234, A100, 81920, 0\r\n4, GPU-abcd, A100, [N/A], 0`
    );
    expect(rows.map((r) => [r.index, r.name, r.memoryTotalMiB, r.memoryUsedMiB])).toEqual([
      [0, "NVIDIA A100-SXM4-80GB", 81920, undefined],
      [1, "NVIDIA A100-SXM4-80GB", 81920, 0],
      [2, "Quadro RTX 8000, Rev 2", 48601, 12],
    ]);
    expect(skipped).toHaveLength(3);
    expect(skipped[0]).toMatch(/expected 5 comma-separated fields/);
    expect(skipped[1]).toMatch(/not a GPU UUID/);
    expect(skipped[2]).toMatch(/memory.total/);
  });

  it("reads -L listings with MIG devices, in current and pre-470 formats", () => {
    const current = parseGpuList(A100_MIG_LIST);
    expect(current.skipped).toEqual([]);
    expect(current.rows.map((g) => [g.index, g.mig.map((m) => [m.profile, m.deviceIndex, m.uuid])])).toEqual([
      [
        0,
        [
          ["3g.40gb", 0, "MIG-7c3a1d2e-9b8f-5a4c-8e1d-2f3a4b5c6d7e"],
          ["3g.40gb", 1, "MIG-0b1c2d3e-4f5a-5b6c-9d7e-8f9a0b1c2d3e"],
        ],
      ],
      [1, []],
    ]);
    const old = parseGpuList(OLD_DRIVER_MIG_LIST);
    expect(old.rows[0]!.name).toBe("A100-SXM4-40GB");
    expect(old.rows[0]!.mig.map((m) => m.uuid)).toEqual([
      "MIG-GPU-e91edf3b-b297-37c1-a2a7-7601c98a6c7c/7/0",
      "MIG-GPU-e91edf3b-b297-37c1-a2a7-7601c98a6c7c/8/0",
    ]);
    expect(parseGpuList("  MIG 1g.10gb Device 0: (UUID: MIG-x)\nNo devices were found").skipped).toHaveLength(2);
  });

  it("reads compute apps, [N/A] memory included", () => {
    const { rows, skipped } = parseComputeApps("4242, GPU-5e9b0b7c, 20480\n4243, MIG-7c3a1d2e, [N/A]\ngarbage\n");
    expect(rows).toEqual([
      { pid: 4242, gpuUuid: "GPU-5e9b0b7c", usedMiB: 20480 },
      { pid: 4243, gpuUuid: "MIG-7c3a1d2e", usedMiB: undefined },
    ]);
    expect(skipped).toHaveLength(1);
    expect(parseComputeApps("No running processes found\n").rows).toEqual([]);
  });

  it("sizes MIG profiles conservatively from their names", () => {
    expect(migProfileMemoryMiB("3g.40gb")).toBe(38146);
    expect(migProfileMemoryMiB("1g.10gb+me")).toBe(9536);
    expect(migProfileMemoryMiB("1c.3g.40gb")).toBe(38146);
    expect(migProfileMemoryMiB("7g")).toBeUndefined();
  });
});

describe("discoverGpus", () => {
  it("builds real devices from nvidia-smi, with UUIDs, and flags differences from the pool", async () => {
    const smi = fakeNvidiaSmi({ [QUERY]: { stdout: H100_QUERY }, [LIST]: { stdout: H100_LIST } });
    const inventory = await discoverGpus({ pool, node: "gpu-node-7", path: smi.dir });
    expect(inventory.source).toBe("nvidia-smi");
    expect(inventory.devices).toEqual([
      {
        id: "gpu-node-7-g0",
        uuid: "GPU-5e9b0b7c-3b0a-4f4e-a1b2-0c1d2e3f4a5b",
        node: "gpu-node-7",
        index: 0,
        name: "NVIDIA H100 80GB HBM3",
        memoryMiB: 81559,
        memoryUsedMiB: 1,
        simulated: false,
      },
      {
        id: "gpu-node-7-g1",
        uuid: "GPU-9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4",
        node: "gpu-node-7",
        index: 1,
        name: "NVIDIA H100 80GB HBM3",
        memoryMiB: 81559,
        memoryUsedMiB: 40213,
        simulated: false,
      },
    ]);
    expect(inventory.warnings).toEqual([]);
    expect(inventory.nvidiaSmi).toBe(smi.program);
    expect(inventory.devices.map(visibleDeviceId)).toEqual(inventory.devices.map((d) => d.uuid));
  });

  it("schedules on MIG instances instead of their GPU, and warns when the node does not match the pool", async () => {
    const smi = fakeNvidiaSmi({ [QUERY]: { stdout: A100_MIG_QUERY }, [LIST]: { stdout: A100_MIG_LIST } });
    const inventory = await discoverGpus({ pool: { ...pool, gpusPerNode: 4 }, node: "a100-node", path: smi.dir });
    expect(inventory.devices.map((d) => [d.id, d.uuid, d.migProfile, d.memoryMiB])).toEqual([
      ["a100-node-g0-mig0", "MIG-7c3a1d2e-9b8f-5a4c-8e1d-2f3a4b5c6d7e", "3g.40gb", 38146],
      ["a100-node-g0-mig1", "MIG-0b1c2d3e-4f5a-5b6c-9d7e-8f9a0b1c2d3e", "3g.40gb", 38146],
      ["a100-node-g1", "GPU-1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809", undefined, 81920],
    ]);
    expect(inventory.devices.every((d) => !d.simulated)).toBe(true);
    expect(inventory.warnings.join("\n")).toMatch(/lists 2 GPU\(s\) on this node but pool 'render-h100' declares 4 per node/);
  });

  it("still lists GPUs when nvidia-smi -L fails, saying MIG devices are not listed", async () => {
    const smi = fakeNvidiaSmi({ [QUERY]: { stdout: H100_QUERY }, [LIST]: { exitCode: 6, stderr: "No devices were found" } });
    const inventory = await discoverGpus({ pool, node: "n", path: smi.dir });
    expect(inventory.devices).toHaveLength(2);
    expect(inventory.warnings.join("\n")).toMatch(/exit code 6.*MIG devices, if any, are not listed/);
  });

  it("uses the pool's devices, marked simulated and without UUIDs, where nvidia-smi is absent", async () => {
    const inventory = await discoverGpus({ pool, path: emptyPath() });
    expect(inventory.source).toBe("simulated");
    expect(inventory.devices.map((d) => [d.id, d.uuid, d.simulated, d.name, d.memoryMiB])).toEqual([
      ["render-h100-n0-g0", null, true, "H100-80GB (simulated)", 81559],
      ["render-h100-n0-g1", null, true, "H100-80GB (simulated)", 81559],
    ]);
    expect(inventory.warnings[0]).toMatch(/nvidia-smi is not on PATH.*marked simulated/);
    expect(inventory.nvidiaSmi).toBeUndefined();
    expect(inventory.devices.map(visibleDeviceId)).toEqual(["render-h100-n0-g0", "render-h100-n0-g1"]);
    // Asking for simulated devices never consults nvidia-smi, even where it is present.
    const smi = fakeNvidiaSmi({ [QUERY]: { stdout: H100_QUERY } });
    expect((await discoverGpus({ pool, path: smi.dir, mode: "simulated" })).source).toBe("simulated");
  });

  it("refuses to fall back to simulated devices when nvidia-smi is there but fails, or is required", async () => {
    const broken = fakeNvidiaSmi({ [QUERY]: { exitCode: 9, stdout: DRIVER_FAILURE } });
    await expect(discoverGpus({ pool, path: broken.dir })).rejects.toThrow(
      /exit code 9.*couldn't communicate with the NVIDIA driver.*run with simulated devices/
    );
    await expect(discoverGpus({ pool, path: emptyPath(), mode: "nvidia-smi" })).rejects.toBeInstanceOf(InventoryError);
    const empty = fakeNvidiaSmi({ [QUERY]: { stdout: "garbage\n" } });
    await expect(discoverGpus({ pool, path: empty.dir })).rejects.toThrow(/no GPU it could read.*garbage/);
  });

  it("gives up on an nvidia-smi that hangs", async () => {
    const hung = fakeNvidiaSmi({ [QUERY]: { hang: true } });
    await expect(discoverGpus({ pool, path: hung.dir, timeoutMs: 300 })).rejects.toThrow(/gave no answer within 300 ms/);
  });
});

describe("VRAM sampling", () => {
  const gpuA = "GPU-5e9b0b7c-3b0a-4f4e-a1b2-0c1d2e3f4a5b";
  const gpuB = "GPU-9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4";

  it("attributes usage to the stage's process group when pids are visible", () => {
    const reading = {
      byGpu: new Map([
        [gpuA, 30000],
        [gpuB, 9000],
      ]),
      processes: [
        { pid: 10, gpuUuid: gpuA, usedMiB: 2000 },
        { pid: 11, gpuUuid: gpuA, usedMiB: 500 },
        { pid: 20, gpuUuid: gpuA, usedMiB: 27000 },
        { pid: 10, gpuUuid: gpuB, usedMiB: 9000 },
      ],
    };
    const groups = new Map([
      [10, 10],
      [11, 10],
      [20, 99],
    ]);
    expect(attributeVram(reading, [gpuA, gpuB], 10, (pid) => groups.get(pid))).toBe(9000);
    expect(attributeVram(reading, [gpuA], 10, (pid) => groups.get(pid))).toBe(2500);
    // Pids from another pid namespace: the GPUs' whole usage.
    expect(attributeVram(reading, [gpuA], 10, () => undefined)).toBe(30000);
    expect(attributeVram({ byGpu: new Map(), processes: [] }, [gpuA], 10, () => undefined)).toBeUndefined();
  });

  it("reads the process group of a live process from /proc", async () => {
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { detached: true, stdio: "ignore" });
    try {
      expect(processGroupOf(child.pid!)).toBe(child.pid);
      expect(processGroupOf(process.pid)).not.toBe(child.pid);
      expect(processGroupOf(2 ** 30)).toBeUndefined();
    } finally {
      process.kill(-child.pid!, "SIGKILL");
    }
  });

  it("samples a running stage's VRAM through nvidia-smi", async () => {
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { detached: true, stdio: "ignore" });
    try {
      const smi = fakeNvidiaSmi({
        [QUERY]: { stdout: H100_QUERY },
        [APPS]: { stdout: `${child.pid}, ${gpuA}, 12288\n${process.pid}, ${gpuA}, 20000\n${child.pid}, ${gpuB}, 4096\n` },
      });
      const sampler = new NvidiaSmiVramSampler(smi.program);
      expect(await sampler.sample([gpuA, gpuB], child.pid!)).toBe(12288);
      smi.respond({ [QUERY]: { stdout: H100_QUERY }, [APPS]: { stdout: "" } });
      expect(await sampler.sample([gpuB], child.pid!)).toBe(40213);
    } finally {
      process.kill(-child.pid!, "SIGKILL");
    }
  });
});
