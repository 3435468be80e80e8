/**
 * The agent's DCGM-named GPU gauges: dcgm-exporter's names, units and labels for the real GPUs
 * nvidia-smi reads, nothing under those names for a simulated device; and the GPU-seconds counters'
 * workflow label bounded to the declared workflows.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { GpuDevice } from "../../../runtime/agent/inventory/types.ts";
import { openSqliteStore, type Store } from "../../../runtime/agent/store/index.ts";
import { AgentMetrics, INLINE_WORKFLOW } from "../../../runtime/agent/service/metrics.ts";
import { parseUseQuery } from "../../../runtime/agent/service/gpu-history.ts";

const H100: GpuDevice = { id: "n0-g1", node: "n0", index: 1, name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559, memoryUsedMiB: 0, uuid: "GPU-1f027ee8-6e1e-2b8c-0108-3d370e5f0418", simulated: false };
const SIMULATED: GpuDevice = { id: "sim-0", node: "n0", index: 2, name: "simulated L4", memoryMiB: 24576, memoryUsedMiB: 0, uuid: null, simulated: true };

describe("AgentMetrics: DCGM gauges and usage counters", () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  async function metricsWith(devices: GpuDevice[], measureText: string | undefined, workflows: string[] = []) {
    const dir = mkdtempSync(join(tmpdir(), "gpufabric-metrics-"));
    const store: Store = await openSqliteStore(join(dir, "state.db"));
    cleanups.push(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    let reads = 0;
    const metrics = new AgentMetrics({
      store,
      scheduler: () => undefined,
      devices,
      loop: () => undefined,
      workflows,
      ...(measureText !== undefined && {
        measure: async () => {
          reads++;
          return parseUseQuery(measureText);
        },
      }),
    });
    return { metrics, reads: () => reads };
  }

  it("exports FB_USED, FB_FREE (MiB) and GPU_UTIL (%) with dcgm-exporter's labels, from one reading per scrape", async () => {
    const { metrics, reads } = await metricsWith([H100, SIMULATED], `${H100.uuid}, 40960, 87\n`);
    const text = await metrics.textFor("studio");
    const labels = `{gpu="1",UUID="${H100.uuid}",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="n0"}`;
    expect(text).toContain(`DCGM_FI_DEV_FB_USED${labels} 40960`);
    expect(text).toContain(`DCGM_FI_DEV_FB_FREE${labels} ${81559 - 40960}`);
    expect(text).toContain(`DCGM_FI_DEV_GPU_UTIL${labels} 87`);
    expect(text).toContain("# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).");
    // The simulated device has no reading under DCGM's names.
    expect(text.split("\n").filter((l) => l.startsWith("DCGM_FI_DEV_"))).toHaveLength(3);
    expect(reads()).toBe(1);
  });

  it("leaves out what nvidia-smi could not read, and exports nothing for simulated devices alone", async () => {
    const partial = await metricsWith([H100], `${H100.uuid}, [N/A], 12\n`);
    const text = await partial.metrics.textFor("studio");
    expect(text).not.toMatch(/^DCGM_FI_DEV_FB_(USED|FREE)\{/m);
    expect(text).toMatch(/^DCGM_FI_DEV_GPU_UTIL\{.*\} 12$/m);

    const simulated = await metricsWith([SIMULATED], `GPU-other, 100, 5\n`);
    const simText = await simulated.metrics.textFor("studio");
    expect(simText).toContain("# TYPE DCGM_FI_DEV_FB_USED gauge");
    expect(simText).not.toMatch(/^DCGM_FI_DEV_\w+\{/m);
    expect(simulated.reads()).toBe(0);
  });

  it("counts GPU- and VRAM-GiB-seconds per tenant, a workflow label only for declared workflows", async () => {
    const { metrics } = await metricsWith([SIMULATED], undefined, ["contact-sheet"]);
    metrics.attemptEnded({ tenant: "studio", workflow: "contact-sheet", gpus: 2, vramMiBPerGpu: 2048, seconds: 10, simulated: true });
    metrics.attemptEnded({ tenant: "studio", workflow: "my-graph-4711", gpus: 1, vramMiBPerGpu: 512, seconds: 4, simulated: false });
    metrics.attemptEnded({ tenant: "rival", workflow: "other-name", gpus: 1, vramMiBPerGpu: 1024, seconds: 3, simulated: false });
    const text = await metrics.textFor("studio");
    expect(text).toContain('gpufabric_gpu_seconds_total{tenant="studio",workflow="contact-sheet"} 20');
    expect(text).toContain('gpufabric_vram_gib_seconds_total{tenant="studio",workflow="contact-sheet"} 40');
    expect(text).toContain(`gpufabric_gpu_seconds_total{tenant="studio",workflow="${INLINE_WORKFLOW}"} 4`);
    expect(text).toContain(`gpufabric_vram_gib_seconds_total{tenant="studio",workflow="${INLINE_WORKFLOW}"} 2`);
    expect(text).not.toContain("my-graph-4711");
    expect(text).not.toContain("rival");
  });
});
