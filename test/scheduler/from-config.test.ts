import { describe, expect, it } from "vitest";
import type { PoolConfig, TenantConfig } from "../../runtime/config/schema.ts";
import { schedulerFromConfig } from "../../runtime/scheduler/from-config.ts";
import { placed, run, stage, waiting } from "./helpers.ts";

const pool: PoolConfig = {
  name: "studio",
  gpu: { model: "L40S-48GB", product: "NVIDIA-L40S", memoryMiB: 48 * 1024 },
  nodes: 1,
  gpusPerNode: 4,
  sharing: { mode: "exclusive" },
  devices: [0, 1, 2, 3].map((i) => ({ id: `studio-n0-g${i}`, node: "n0", index: i, memoryMiB: 48 * 1024 })),
  nodeSelector: {},
  priorityClasses: { interactive: "gf-interactive", batch: "gf-batch" },
  tenantQuotas: { design: 1 },
};
const tenant = (name: string, weight: number): TenantConfig => ({ name, weight, gpuQuota: null, vramQuotaMiB: null, roles: [], dataClassification: "internal", isolation: "shared" });

describe("scheduler from a platform config", () => {
  const config = { pools: [pool], tenants: [tenant("animation", 2), tenant("design", 1)], scheduler: { headroomMiB: 2048, preemption: "never" as const, agingSeconds: 120 }, deployment: { pool: "studio" } };

  it("takes the pool's devices, the tenants' weights, the pool quota and the scheduler settings", () => {
    const s = schedulerFromConfig(config);
    expect(s.gpuCount).toBe(4);
    expect(s.settings).toEqual({ headroomMiB: 2048, preemption: "never", agingSeconds: 120 });
    // design may hold 1 GPU in this pool.
    s.submit({ ...run("d1", [stage("x", 10)]), tenant: "design" }, 0);
    s.submit({ ...run("d2", [stage("x", 10)]), tenant: "design" }, 0);
    const d = s.schedule(0);
    expect(placed(d).map((p) => p.runId)).toEqual(["d1"]);
    expect(waiting(d)[0]!.reason).toMatchObject({ code: "quota", quota: 1 });
    // Headroom counts: 46 GiB usable on a 48 GiB device.
    expect(s.submit({ ...run("big", [stage("x", 47)]), tenant: "animation" }, 0)).toMatchObject({ accepted: false, field: "stages[0].resources" });
    expect(s.submit({ ...run("who", [stage("x", 1)]), tenant: "nobody" }, 0)).toMatchObject({ accepted: false, field: "tenant" });
  });

  it("refuses an unknown pool", () => {
    expect(() => schedulerFromConfig(config, "missing")).toThrow(/unknown pool 'missing'/);
  });
});
