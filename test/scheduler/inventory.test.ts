import { describe, expect, it } from "vitest";
import { ValidationError } from "../../runtime/config/errors.ts";
import { inventoryFromPools, parsePoolSpec } from "../../runtime/scheduler/inventory.ts";
import type { PoolConfig } from "../../runtime/config/schema.ts";

const issuesOf = (spec: string) => {
  try {
    parsePoolSpec(spec);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  }
  throw new Error(`'${spec}' was accepted`);
};

describe("pool spec", () => {
  it("reads counts, models, memory and node grouping", () => {
    const gpus = parsePoolSpec("8xH100-80,8xL40S-48,16xA10G-24");
    expect(gpus).toHaveLength(32);
    expect(gpus[0]).toEqual({ id: "h100-80-n0-g0", node: "h100-80-n0", model: "H100", memoryMiB: 80 * 1024, slots: 1 });
    // 16 A10G in nodes of 8 by default.
    expect(new Set(gpus.filter((g) => g.model === "A10G").map((g) => g.node))).toEqual(new Set(["a10g-24-n0", "a10g-24-n1"]));
  });

  it("takes GPUs per node as NODESxPERNODEx or :PERNODE, and groups small counts on one node", () => {
    expect(new Set(parsePoolSpec("2x8xH100-80").map((g) => g.node)).size).toBe(2);
    expect(new Set(parsePoolSpec("16xA10G-24:4").map((g) => g.node)).size).toBe(4);
    expect(new Set(parsePoolSpec("3xL4-24").map((g) => g.node)).size).toBe(1);
    expect(parsePoolSpec("H100-80")).toHaveLength(1);
  });

  it("names the item and field at fault", () => {
    expect(issuesOf("8xH100")).toEqual([expect.objectContaining({ field: "pool[0]", message: expect.stringMatching(/COUNTxMODEL-GiB/) })]);
    expect(issuesOf("8xH100-80,0xA10G-24")[0]).toMatchObject({ field: "pool[1].count" });
    expect(issuesOf("4xA10G-0")[0]).toMatchObject({ field: "pool[0].memoryGiB" });
    expect(issuesOf("2x8xH100-80:4")[0]).toMatchObject({ field: "pool[0]", message: expect.stringMatching(/twice/) });
    expect(issuesOf("")[0]).toMatchObject({ field: "pool" });
  });
});

describe("inventory from a platform config", () => {
  it("maps a pool's devices, nodes and time-slicing replicas", () => {
    const pool: PoolConfig = {
      name: "batch",
      gpu: { model: "L40S-48GB", product: "NVIDIA-L40S", memoryMiB: 46068 },
      nodes: 1,
      gpusPerNode: 2,
      sharing: { mode: "time-slicing", replicas: 4 },
      devices: [
        { id: "batch-n0-g0", node: "n0", index: 0, memoryMiB: 46068 },
        { id: "batch-n0-g1", node: "n0", index: 1, memoryMiB: 46068 },
      ],
      nodeSelector: {},
      priorityClasses: { interactive: "gf-interactive", batch: "gf-batch" },
      tenantQuotas: {},
    };
    expect(inventoryFromPools([pool])).toEqual([
      { id: "batch-n0-g0", node: "batch/n0", model: "L40S-48GB", memoryMiB: 46068, slots: 4 },
      { id: "batch-n0-g1", node: "batch/n0", model: "L40S-48GB", memoryMiB: 46068, slots: 4 },
    ]);
  });
});
