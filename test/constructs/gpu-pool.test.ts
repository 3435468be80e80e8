import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { FabricStack } from "../../constructs/fabric-stack.ts";
import { GpuModel } from "../../constructs/gpu-model.ts";
import { GpuPool, type GpuPoolProps } from "../../constructs/gpu-pool.ts";
import { GpuSharing } from "../../constructs/gpu-sharing.ts";
import { NetworkSegment } from "../../constructs/network-segment.ts";
import { Tenant } from "../../constructs/tenant.ts";
import { ValidationError } from "../../runtime/config/errors.ts";
import { PoolSchema } from "../../runtime/config/schema.ts";
import { metadataOf, synth } from "../support/synth.ts";

const PC = "kubernetes_priority_class_v1";
const CM = "kubernetes_config_map_v1";
const RQ = "kubernetes_resource_quota_v1";

function setup() {
  const stack = new FabricStack(Testing.app(), "prod");
  const studio = new NetworkSegment(stack, "studio");
  const research = new NetworkSegment(stack, "research");
  const acme = new Tenant(stack, "acme", { segment: studio });
  const labs = new Tenant(stack, "labs", { segment: research });
  return { stack, studio, research, acme, labs };
}

describe("GpuPool", () => {
  it("creates an interactive and a batch PriorityClass; only interactive preempts", () => {
    const { stack } = setup();
    const pool = new GpuPool(stack, "batch-h100", { model: GpuModel.H100_80GB, nodes: 2, gpusPerNode: 8 });
    const out = synth(stack);
    const interactive = out.find(PC, "batch-h100-interactive").config;
    const batch = out.find(PC, "batch-h100-batch").config;
    expect(interactive).toMatchObject({ value: 100000, preemption_policy: "PreemptLowerPriority", global_default: false });
    expect(batch).toMatchObject({ value: 1000, preemption_policy: "Never", global_default: false });
    expect(metadataOf(out.find(PC, "batch-h100-batch")).labels).toMatchObject({ "gpufabric.dev/pool": "batch-h100", "app.kubernetes.io/part-of": "gpufabric" });
    expect(pool.priorityClassName("interactive")).toBe("batch-h100-interactive");
    expect(pool.priorityClassName("batch")).toBe("batch-h100-batch");
  });

  it("selects exclusive nodes by GPU product and tolerates the nvidia.com/gpu taint", () => {
    const { stack } = setup();
    const pool = new GpuPool(stack, "batch", { model: GpuModel.H100_80GB, nodes: 1, gpusPerNode: 8, nodeSelector: { "cloud.example/pool": "gpu" } });
    expect(pool.nodeSelector).toEqual({ "cloud.example/pool": "gpu", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" });
    expect(pool.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(pool.gpuResourceName).toBe("nvidia.com/gpu");
    expect(pool.deviceMemoryMiB).toBe(81559);
    // Exclusive GPUs need no device-plugin sharing config.
    expect(synth(stack).resources(CM)).toEqual([]);
  });

  it("writes the GPU Operator's time-slicing config and selects the -SHARED product label", () => {
    const { stack } = setup();
    const pool = new GpuPool(stack, "interactive-l40s", { model: GpuModel.L40S_48GB, nodes: 3, gpusPerNode: 4, sharing: GpuSharing.timeSlicing(4) });
    const cm = synth(stack).find(CM, "gpufabric-device-plugin", "gpu-operator");
    expect(metadataOf(cm).labels).toMatchObject({ "app.kubernetes.io/name": "gpufabric-device-plugin-config" });
    expect(Object.keys(cm.config.data)).toEqual(["interactive-l40s"]);
    expect(parseYaml(cm.config.data["interactive-l40s"])).toEqual({
      version: "v1",
      flags: { migStrategy: "none" },
      sharing: {
        timeSlicing: {
          renameByDefault: false,
          failRequestsGreaterThanOne: true,
          resources: [{ name: "nvidia.com/gpu", replicas: 4 }],
        },
      },
    });
    expect(pool.nodeSelector).toEqual({ "nvidia.com/gpu.product": "NVIDIA-L40S-SHARED", "nvidia.com/device-plugin.config": "interactive-l40s" });
    expect(pool.gpuResourceName).toBe("nvidia.com/gpu");
    expect(pool.devicesPerGpu).toBe(4);
    // No memory isolation: each time-sliced workload may see the whole GPU.
    expect(pool.deviceMemoryMiB).toBe(46068);
  });

  it("writes the device-plugin and mig-parted configs for a single MIG profile", () => {
    const { stack } = setup();
    const pool = new GpuPool(stack, "mig", { model: GpuModel.A100_40GB, nodes: 1, gpusPerNode: 2, sharing: GpuSharing.mig({ "1g.5gb": 7 }), operatorNamespace: "nvidia-gpu-operator" });
    const out = synth(stack);
    const plugin = out.find(CM, "gpufabric-device-plugin", "nvidia-gpu-operator");
    expect(parseYaml(plugin.config.data.mig)).toEqual({ version: "v1", flags: { migStrategy: "single" } });
    const parted = out.find(CM, "gpufabric-mig-parted", "nvidia-gpu-operator");
    expect(parseYaml(parted.config.data["config.yaml"])).toEqual({
      version: "v1",
      "mig-configs": {
        "all-disabled": [{ devices: "all", "mig-enabled": false }],
        mig: [{ devices: "all", "mig-enabled": true, "mig-devices": { "1g.5gb": 7 } }],
      },
    });
    expect(pool.migStrategy).toBe("single");
    expect(pool.gpuResourceName).toBe("nvidia.com/gpu");
    expect(pool.nodeSelector).toEqual({
      "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
      "nvidia.com/device-plugin.config": "mig",
      "nvidia.com/mig.config": "mig",
    });
    expect(pool.deviceMemoryMiB).toBe(4864);
  });

  it("puts every shared pool's config in the one device-plugin and mig-parted ConfigMap the GPU Operator reads", () => {
    const { stack } = setup();
    new GpuPool(stack, "slices", { model: GpuModel.L40S_48GB, nodes: 1, gpusPerNode: 4, sharing: GpuSharing.timeSlicing(2) });
    new GpuPool(stack, "mig-small", { model: GpuModel.A100_40GB, nodes: 1, gpusPerNode: 2, sharing: GpuSharing.mig({ "1g.5gb": 7 }) });
    new GpuPool(stack, "mig-large", { model: GpuModel.H100_80GB, nodes: 1, gpusPerNode: 8, sharing: GpuSharing.mig({ "3g.40gb": 2 }) });
    new GpuPool(stack, "whole", { model: GpuModel.H100_80GB, nodes: 1, gpusPerNode: 8 });
    const out = synth(stack);
    expect(out.resources(CM).map((cm) => metadataOf(cm).name).sort()).toEqual(["gpufabric-device-plugin", "gpufabric-mig-parted"]);
    const plugin = out.find(CM, "gpufabric-device-plugin", "gpu-operator");
    expect(Object.keys(plugin.config.data)).toEqual(["mig-large", "mig-small", "slices"]);
    expect(parseYaml(plugin.config.data.slices).sharing.timeSlicing.resources).toEqual([{ name: "nvidia.com/gpu", replicas: 2 }]);
    const parted = parseYaml(out.find(CM, "gpufabric-mig-parted", "gpu-operator").config.data["config.yaml"]);
    expect(Object.keys(parted["mig-configs"])).toEqual(["all-disabled", "mig-large", "mig-small"]);
    expect(parted["mig-configs"]["mig-large"]).toEqual([{ devices: "all", "mig-enabled": true, "mig-devices": { "3g.40gb": 2 } }]);
  });

  it("refuses a MIG pool named like the operator's reserved 'all-disabled' config, naming the fix", () => {
    const { stack } = setup();
    expect(() => new GpuPool(stack, "all-disabled", { model: GpuModel.A100_40GB, nodes: 1, gpusPerNode: 1, sharing: GpuSharing.mig({ "1g.5gb": 7 }) })).toThrow(
      /config key 'all-disabled'.*give each GpuPool a unique name \(and not 'all-disabled'\)/,
    );
  });

  it("uses the mixed strategy and per-profile resources for several MIG profiles", () => {
    const { stack } = setup();
    const pool = new GpuPool(stack, "mixed", { model: GpuModel.H100_80GB, nodes: 1, gpusPerNode: 1, sharing: GpuSharing.mig({ "1g.10gb": 2, "3g.40gb": 1, "2g.20gb": 1 }) });
    expect(pool.migStrategy).toBe("mixed");
    expect(pool.gpuResourceNames).toEqual(["nvidia.com/mig-3g.40gb", "nvidia.com/mig-2g.20gb", "nvidia.com/mig-1g.10gb"]);
    expect(pool.gpuResourceName).toBe("nvidia.com/mig-3g.40gb");
    expect(pool.deviceMemoryMiB).toBe(40448);
    expect(pool.nodeSelector["nvidia.com/gpu.product"]).toBe("NVIDIA-H100-80GB-HBM3");
    const plugin = synth(stack).find(CM, "gpufabric-device-plugin", "gpu-operator");
    expect(parseYaml(plugin.config.data.mixed)).toEqual({ version: "v1", flags: { migStrategy: "mixed" } });
  });

  it("enumerates devices in the platform config: GPUs, or MIG instances per GPU", () => {
    const { stack, acme } = setup();
    const exclusive = new GpuPool(stack, "ex", { model: GpuModel.L4_24GB, nodes: 2, gpusPerNode: 2, tenantQuotas: [{ tenant: acme, gpus: 3 }] });
    const config = exclusive.toConfig();
    expect(config.devices).toEqual([
      { id: "ex-n0-g0", node: "ex-n0", index: 0, memoryMiB: 23034 },
      { id: "ex-n0-g1", node: "ex-n0", index: 1, memoryMiB: 23034 },
      { id: "ex-n1-g0", node: "ex-n1", index: 0, memoryMiB: 23034 },
      { id: "ex-n1-g1", node: "ex-n1", index: 1, memoryMiB: 23034 },
    ]);
    expect(config).toMatchObject({
      name: "ex",
      gpu: { model: "L4-24GB", product: "NVIDIA-L4", memoryMiB: 23034 },
      nodes: 2,
      gpusPerNode: 2,
      sharing: { mode: "exclusive" },
      priorityClasses: { interactive: "ex-interactive", batch: "ex-batch" },
      tenantQuotas: { acme: 3 },
    });
    expect(PoolSchema.parse(config)).toEqual(config);

    const mig = new GpuPool(stack, "mig", { model: GpuModel.A100_80GB, nodes: 1, gpusPerNode: 2, sharing: GpuSharing.mig({ "1g.10gb": 1, "3g.40gb": 1, "2g.20gb": 1 }) }).toConfig();
    // Largest instance first, so a stage that needs the most memory finds it at the lowest index.
    expect(mig.devices.map((d) => [d.id, d.index, d.migProfile, d.memoryMiB])).toEqual([
      ["mig-n0-g0-mig0", 0, "3g.40gb", 40192],
      ["mig-n0-g0-mig1", 0, "2g.20gb", 19968],
      ["mig-n0-g0-mig2", 0, "1g.10gb", 9728],
      ["mig-n0-g1-mig0", 1, "3g.40gb", 40192],
      ["mig-n0-g1-mig1", 1, "2g.20gb", 19968],
      ["mig-n0-g1-mig2", 1, "1g.10gb", 9728],
    ]);
    expect(PoolSchema.parse(mig)).toEqual(mig);
  });

  it("puts each tenant's quota in its segment namespace, scoped to the pool's PriorityClasses", () => {
    const { stack, acme, labs } = setup();
    new GpuPool(stack, "batch", { model: GpuModel.H100_80GB, nodes: 2, gpusPerNode: 8, tenantQuotas: [{ tenant: acme, gpus: 4 }, { tenant: labs, gpus: 0 }] });
    const out = synth(stack);
    const acmeQuota = out.find(RQ, "batch-gpu-quota", "studio");
    expect(metadataOf(acmeQuota).labels).toMatchObject({ "gpufabric.dev/pool": "batch", "gpufabric.dev/tenant": "acme" });
    expect(acmeQuota.config.spec.hard).toEqual({ "requests.nvidia.com/gpu": "4" });
    expect(acmeQuota.config.spec.scope_selector).toEqual({
      match_expression: [{ scope_name: "PriorityClass", operator: "In", values: ["batch-interactive", "batch-batch"] }],
    });
    expect(acmeQuota.config.depends_on).toEqual([expect.stringMatching(/^kubernetes_namespace_v1\.studio_namespace/)]);
    expect(out.find(RQ, "batch-gpu-quota", "research").config.spec.hard).toEqual({ "requests.nvidia.com/gpu": "0" });
  });

  it("lets two pools quota the same tenant namespace (each quota is scoped to its own pool)", () => {
    const { stack, acme } = setup();
    new GpuPool(stack, "a", { model: GpuModel.H100_80GB, nodes: 1, gpusPerNode: 8, tenantQuotas: [{ tenant: acme, gpus: 2 }] });
    new GpuPool(stack, "b", { model: GpuModel.L4_24GB, nodes: 1, gpusPerNode: 8, tenantQuotas: [{ tenant: acme, gpus: 6 }] });
    expect(synth(stack).resources(RQ).map((r) => [metadataOf(r).name, metadataOf(r).namespace])).toEqual([
      ["a-gpu-quota", "studio"],
      ["b-gpu-quota", "studio"],
    ]);
  });

  it("quotas each MIG resource under the mixed strategy", () => {
    const { stack, acme } = setup();
    new GpuPool(stack, "mixed", { model: GpuModel.H100_80GB, nodes: 1, gpusPerNode: 1, sharing: GpuSharing.mig({ "1g.10gb": 4, "3g.40gb": 1 }), tenantQuotas: [{ tenant: acme, gpus: 2 }] });
    expect(synth(stack).find(RQ, "mixed-gpu-quota", "studio").config.spec.hard).toEqual({
      "requests.nvidia.com/mig-3g.40gb": "2",
      "requests.nvidia.com/mig-1g.10gb": "2",
    });
  });

  it("keeps every derived name a valid label value at the longest pool name", () => {
    const { stack, acme } = setup();
    const name = "p".repeat(49);
    new GpuPool(stack, "long", { name, model: GpuModel.H100_80GB, nodes: 1, gpusPerNode: 1, sharing: GpuSharing.mig({ "7g.80gb": 1 }), tenantQuotas: [{ tenant: acme, gpus: 1 }] });
    const objects = synth(stack).allResources().filter((r) => metadataOf(r)?.labels?.["gpufabric.dev/pool"] === name);
    expect(objects.map((r) => r.type).sort()).toEqual([PC, PC, RQ]);
    for (const r of objects) {
      expect(metadataOf(r).name.length).toBeLessThanOrEqual(63);
      expect(metadataOf(r).labels["app.kubernetes.io/instance"]).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    }
  });

  it("takes custom priorities", () => {
    const { stack } = setup();
    new GpuPool(stack, "p", { model: GpuModel.L4_24GB, nodes: 1, gpusPerNode: 1, priorities: { interactive: 5000, batch: 10 } });
    const out = synth(stack);
    expect(out.find(PC, "p-interactive").config.value).toBe(5000);
    expect(out.find(PC, "p-batch").config.value).toBe(10);
  });

  describe("rejects bad props with a fix-it message", () => {
    const base = { model: GpuModel.H100_80GB, nodes: 1, gpusPerNode: 8 };
    const cases: [string, Partial<GpuPoolProps>, RegExp][] = [
      ["name", { name: "Batch" }, /name: "Batch" is not a DNS-1123 label/],
      ["long name", { name: "a".repeat(50) }, /is 50 characters long: use at most 49/],
      ["model", { model: undefined }, /model: is required: pass a GpuModel such as GpuModel.H100_80GB/],
      ["nodes", { nodes: 0 }, /nodes: 0 is not a positive integer/],
      ["gpusPerNode", { gpusPerNode: 1.5 }, /gpusPerNode: 1.5 is not a positive integer/],
      [
        "MIG on a model without MIG",
        { model: GpuModel.L40S_48GB, sharing: GpuSharing.mig({ "1g.10gb": 1 }) },
        /sharing: L40S-48GB has no MIG: use GpuSharing.timeSlicing\(n\) or exclusive\(\), or a model with MIG \(H100-80GB, H200-141GB, A100-40GB, A100-80GB\)/,
      ],
      [
        "MIG profile of another model",
        { model: GpuModel.A100_40GB, sharing: GpuSharing.mig({ "1g.10gb": 1, "3g.40gb": 1 }) },
        /sharing.profiles\["3g.40gb"\]: '3g.40gb' is not a MIG profile of A100-40GB: use one of 1g.5gb, 1g.10gb, 2g.10gb, 3g.20gb, 4g.20gb, 7g.40gb/,
      ],
      ["too many compute slices", { sharing: GpuSharing.mig({ "4g.40gb": 1, "2g.20gb": 2 }) }, /sharing.profiles: the instances take 8 compute slices but a GPU has 7/],
      ["too many memory slices", { sharing: GpuSharing.mig({ "1g.20gb": 5 }) }, /sharing.profiles: the instances take 10 memory slices but a GPU has 8/],
      ["operatorNamespace", { operatorNamespace: "GPU" }, /operatorNamespace: "GPU" is not a DNS-1123 label/],
      ["reserved nodeSelector key", { nodeSelector: { "nvidia.com/gpu.product": "x" } }, /nodeSelector\["nvidia.com\/gpu.product"\]: 'nvidia.com\/gpu.product' is set by gpufabric itself/],
      ["priority order", { priorities: { interactive: 10, batch: 10 } }, /priorities.interactive: 10 is not above batch \(10\): interactive work must outrank batch work/],
      ["priority range", { priorities: { interactive: 2_000_000_000 } }, /priorities.interactive: 2000000000 is not a priority: give a whole number from 0 to 1000000000/],
    ];
    it.each(cases)("%s", (_name, props, message) => {
      const create = () => new GpuPool(setup().stack, "pool", { ...base, ...props } as GpuPoolProps);
      expect(create).toThrow(ValidationError);
      expect(create).toThrow(message);
    });

    it("a negative quota", () => {
      const { stack, acme } = setup();
      expect(() => new GpuPool(stack, "p", { ...base, tenantQuotas: [{ tenant: acme, gpus: -1 }] })).toThrow(/tenantQuotas\[0\].gpus: -1 is not a GPU count: give a whole number of 0 or more/);
    });

    it("a quota for a tenant of another stack", () => {
      const { stack } = setup();
      const elsewhere = new FabricStack(Testing.app(), "dr");
      const stranger = new Tenant(elsewhere, "stranger", { segment: new NetworkSegment(elsewhere, "s") });
      expect(() => new GpuPool(stack, "p", { ...base, tenantQuotas: [{ tenant: stranger, gpus: 1 }] })).toThrow(
        /tenantQuotas\[0\].tenant: tenant 'stranger' belongs to another FabricStack: declare it in the pool's stack/,
      );
    });

    it("a tenant quoted twice", () => {
      const { stack, acme } = setup();
      expect(() => new GpuPool(stack, "p", { ...base, tenantQuotas: [{ tenant: acme, gpus: 1 }, { tenant: acme, gpus: 2 }] })).toThrow(/tenant 'acme' has two quotas in this pool: keep one/);
    });

    it("two quoted tenants sharing one segment namespace", () => {
      const { stack, studio, acme } = setup();
      const beta = new Tenant(stack, "beta", { segment: studio });
      expect(() => new GpuPool(stack, "p", { ...base, tenantQuotas: [{ tenant: acme, gpus: 1 }, { tenant: beta, gpus: 1 }] })).toThrow(
        /tenants 'acme' and 'beta' both run in namespace 'studio': a ResourceQuota caps a whole namespace, so their quotas would be one shared cap; give each tenant its own NetworkSegment/,
      );
    });

    it("leaves nothing behind when it throws", () => {
      const { stack } = setup();
      expect(() => new GpuPool(stack, "p", { ...base, nodes: -1 })).toThrow(ValidationError);
      new GpuPool(stack, "p", base);
      expect(synth(stack).names(PC).sort()).toEqual(["p-batch", "p-interactive"]);
    });

    it("a second pool with the same name", () => {
      const { stack } = setup();
      new GpuPool(stack, "p", base);
      expect(() => new GpuPool(stack, "p2", { ...base, name: "p" })).toThrow(/pool 'p' is already declared by 'prod\/p' in this stack/);
    });
  });
});
