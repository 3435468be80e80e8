/**
 * The cloud GPU node pools (gpufabric/aws, /gcp, /azure) and a GpuPool built on one: the node pools' nodes
 * carry exactly the labels and taint the GpuPool selects and tolerates, and the pool derives its model, GPU
 * count, sharing and name from the node pool or refuses a mismatch naming the fix. GKE and AKS are checked
 * on the synthesized Terraform JSON; EKS also goes through terraform itself (eks-terraform.test.ts).
 */
import { TerraformStack, Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { EksGpuNodePool, type EksGpuNodePoolProps } from "../../constructs/aws/index.ts";
import { AksGpuNodePool, type AksGpuNodePoolProps } from "../../constructs/azure/index.ts";
import { GkeGpuNodePool, type GkeGpuNodePoolProps } from "../../constructs/gcp/index.ts";
import { loadProviderModule } from "../../constructs/cloud/load-provider.ts";
import { FabricStack, GpuModel, GpuPool, GpuSharing } from "../../constructs/index.ts";
import { ValidationError } from "../../runtime/config/errors.ts";

type Json = Record<string, any>;

function resources(stack: TerraformStack, type: string): Json[] {
  const tf = JSON.parse(Testing.synth(stack)) as { resource?: Record<string, Record<string, Json>> };
  return Object.values(tf.resource?.[type] ?? {});
}

function messages(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues.map((i) => `${i.field}: ${i.message}`);
  }
  throw new Error("expected a ValidationError");
}

const eksProps = (over: Partial<EksGpuNodePoolProps> = {}): EksGpuNodePoolProps => ({
  clusterName: "studio",
  nodeRoleArn: "arn:aws:iam::123456789012:role/gpu-nodes",
  subnetIds: ["subnet-a", "subnet-b"],
  instanceTypes: ["p5.48xlarge"],
  maxNodes: 4,
  ...over,
});

describe("EksGpuNodePool", () => {
  it("makes a managed node group of the NVIDIA AMI that scales from zero, labelled and tainted as its GpuPool selects, with the autoscaler's node-template tags", () => {
    const app = Testing.app();
    const aws = new TerraformStack(app, "aws");
    const nodes = new EksGpuNodePool(aws, "train", eksProps({ spot: true, labels: { "team.example/cost-center": "render" } }));
    const k8s = new FabricStack(app, "k8s");
    const pool = new GpuPool(k8s, "pool", { nodePool: nodes });

    expect([pool.name, pool.model, pool.gpusPerNode, pool.nodes, pool.sharing.mode]).toEqual(["train", GpuModel.H100_80GB, 8, 4, "exclusive"]);
    const [group] = resources(aws, "aws_eks_node_group");
    expect(group).toMatchObject({
      ami_type: "AL2023_x86_64_NVIDIA",
      capacity_type: "SPOT",
      instance_types: ["p5.48xlarge"],
      scaling_config: { min_size: 0, max_size: 4, desired_size: 0 },
      lifecycle: { ignore_changes: ["scaling_config[0].desired_size"] },
      taint: [{ key: "nvidia.com/gpu", value: "present", effect: "NO_SCHEDULE" }],
    });
    // Exactly what the pool's workloads select: every selector label is on the nodes, and nothing else of gpufabric's.
    expect(group!.labels).toEqual(pool.nodeSelector);
    expect(pool.nodeSelector).toEqual({ "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "team.example/cost-center": "render" });
    expect(pool.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);

    const tags = Object.fromEntries(resources(aws, "aws_autoscaling_group_tag").map((r) => [r.tag.key, r.tag.value]));
    expect(tags).toEqual({
      "k8s.io/cluster-autoscaler/node-template/label/nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
      "k8s.io/cluster-autoscaler/node-template/label/team.example/cost-center": "render",
      "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "present:NoSchedule",
      "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu": "8",
    });
    for (const r of resources(aws, "aws_autoscaling_group_tag")) {
      expect(r.autoscaling_group_name).toMatch(/^\$\{aws_eks_node_group\.[^.]+\.resources\[0\]\.autoscaling_groups\[0\]\.name\}$/);
      expect(r.tag.propagate_at_launch).toBe(false);
    }
  });

  it("labels time-sliced and MIG nodes with the device-plugin (and MIG) config of their pool, and advertises the devices the plugin will offer", () => {
    const app = Testing.app();
    const aws = new TerraformStack(app, "aws");
    const shared = new EksGpuNodePool(aws, "sketch", eksProps({ instanceTypes: ["g6e.xlarge", "g6e.2xlarge"], sharing: GpuSharing.timeSlicing(4) }));
    const mig = new EksGpuNodePool(aws, "mig", eksProps({ instanceTypes: ["p4de.24xlarge"], sharing: GpuSharing.mig({ "3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 1 }) }));
    const k8s = new FabricStack(app, "k8s");
    const sketch = new GpuPool(k8s, "sketch", { nodePool: shared });
    const migPool = new GpuPool(k8s, "mig", { nodePool: mig });
    const groups = resources(aws, "aws_eks_node_group");
    expect(groups.find((g) => g.node_group_name === "sketch")!.labels).toEqual(sketch.nodeSelector);
    expect(sketch.nodeSelector).toEqual({ "nvidia.com/gpu.product": "NVIDIA-L40S-SHARED", "nvidia.com/device-plugin.config": "sketch" });
    expect(groups.find((g) => g.node_group_name === "mig")!.labels).toEqual(migPool.nodeSelector);
    expect(migPool.nodeSelector["nvidia.com/mig.config"]).toBe("mig");
    expect(shared.nodeTemplateTags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"]).toBe("4");
    expect(mig.nodeTemplateTags).toMatchObject({
      "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/mig-3g.40gb": "8",
      "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/mig-1g.10gb": "8",
    });
    expect(migPool.gpuResourceNames).toEqual(["nvidia.com/mig-3g.40gb", "nvidia.com/mig-2g.20gb", "nvidia.com/mig-1g.10gb"]);
  });

  it("refuses an instance type it does not know, naming the gpu prop that declares one, and takes the declaration", () => {
    const aws = new TerraformStack(Testing.app(), "aws");
    const refused = messages(() => new EksGpuNodePool(aws, "new", eksProps({ instanceTypes: ["g7.xlarge"] })));
    expect(refused).toEqual([expect.stringMatching(/^instanceTypes\[0\]: 'g7\.xlarge' is not an EC2 instance type gpufabric knows the GPUs of: declare them with gpu: \{ model: .*g5\.xlarge/)]);
    expect(aws.node.tryFindChild("new")).toBeUndefined();
    const declared = new EksGpuNodePool(aws, "new", eksProps({ instanceTypes: ["g7.xlarge"], gpu: { model: GpuModel.L4_24GB, count: 1 } }));
    expect([declared.model, declared.gpusPerNode]).toEqual([GpuModel.L4_24GB, 1]);
  });

  it("refuses instance types with different GPUs in one group, and every missing or bad prop at once", () => {
    const aws = new TerraformStack(Testing.app(), "aws");
    expect(messages(() => new EksGpuNodePool(aws, "mixed", eksProps({ instanceTypes: ["g5.xlarge", "g6.xlarge"] })))).toEqual([
      expect.stringMatching(/^instanceTypes\[1\]: 'g6\.xlarge' has 1 × L4-24GB but 'g5\.xlarge' has 1 × A10G-24GB: .*another EksGpuNodePool/),
    ]);
    const all = messages(() => new EksGpuNodePool(aws, "Bad_Pool", { clusterName: "", nodeRoleArn: "", subnetIds: [], instanceTypes: [], maxNodes: 0, minNodes: -1 }));
    expect(all.map((m) => m.split(":")[0])).toEqual(
      expect.arrayContaining(["pool (defaults to the id, lower-cased)", "instanceTypes", "minNodes", "maxNodes", "clusterName", "nodeRoleArn", "subnetIds"]),
    );
    expect(messages(() => new EksGpuNodePool(aws, "a10", eksProps({ instanceTypes: ["g5.xlarge"], sharing: GpuSharing.mig({ "1g.10gb": 7 }) })))).toEqual([
      "sharing.profiles[\"1g.10gb\"]: A10G-24GB has no MIG: use GpuSharing.timeSlicing(n) or exclusive()",
    ]);
  });
});

describe("GpuPool on a node pool", () => {
  function eks(over: Partial<EksGpuNodePoolProps> = {}) {
    const app = Testing.app();
    return { nodes: new EksGpuNodePool(new TerraformStack(app, "aws"), "render", eksProps(over)), k8s: new FabricStack(app, "k8s") };
  }

  it("refuses a model, GPU count, sharing, name or node count that the node pool contradicts, each with its fix", () => {
    const { nodes, k8s } = eks({ instanceTypes: ["g5.xlarge"], maxNodes: 3 });
    const refused = messages(() => new GpuPool(k8s, "pool", { nodePool: nodes, name: "batch", model: GpuModel.H100_80GB, gpusPerNode: 8, nodes: 5, sharing: GpuSharing.timeSlicing(2) }));
    expect(refused).toEqual([
      expect.stringMatching(/^model: is H100-80GB but node pool 'aws\/render' \(g5\.xlarge\) has A10G-24GB GPUs: leave model out .* instance type with H100-80GB GPUs$/),
      expect.stringMatching(/^gpusPerNode: is 8 but .* has 1 GPU\(s\) per node: leave gpusPerNode out/),
      expect.stringMatching(/^sharing: is .*time-slicing.* but .* is set up for .*exclusive.*: leave sharing out/),
      expect.stringMatching(/^name: is 'batch' but .* labels its nodes for pool 'render': leave name out .* pool: 'batch'$/),
      expect.stringMatching(/^nodes: is 5 but .* grows to at most 3 node\(s\)/),
    ]);
    // Agreeing values are accepted, and fewer nodes than the node pool's maximum too.
    const pool = new GpuPool(k8s, "pool", { nodePool: nodes, name: "render", model: GpuModel.A10G_24GB, gpusPerNode: 1, nodes: 2 });
    expect([pool.nodes, pool.toConfig().devices.length]).toEqual([2, 2]);
  });

  it("refuses something that is not a node pool", () => {
    const k8s = new FabricStack(Testing.app(), "k8s");
    expect(messages(() => new GpuPool(k8s, "pool", { nodePool: {} as never }))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^nodePool: is not a GPU node pool: pass an EksGpuNodePool \(gpufabric\/aws\)/)]),
    );
  });

  it("still needs model, nodes and gpusPerNode without a node pool (on-prem: existing nodes by label)", () => {
    const k8s = new FabricStack(Testing.app(), "k8s");
    expect(messages(() => new GpuPool(k8s, "pool", {})).map((m) => m.split(":")[0])).toEqual(["model", "nodes", "gpusPerNode"]);
  });
});

const gkeProps = (over: Partial<GkeGpuNodePoolProps> = {}): GkeGpuNodePoolProps => ({ cluster: "projects/p/locations/europe-west4/clusters/studio", machineType: "a2-highgpu-2g", maxNodes: 3, ...over });

describe("GkeGpuNodePool", () => {
  it("synthesizes a node pool with the guest accelerator, driver installation, MIG partition size, autoscaling from zero, spot, labels and taint", () => {
    const app = Testing.app();
    const gcp = new TerraformStack(app, "gcp");
    const nodes = new GkeGpuNodePool(gcp, "infer", gkeProps({ spot: true, sharing: GpuSharing.mig({ "1g.5gb": 7 }) }));
    const pool = new GpuPool(new FabricStack(app, "k8s"), "pool", { nodePool: nodes });
    const [np] = resources(gcp, "google_container_node_pool");
    expect(np).toMatchObject({
      name: "infer",
      cluster: "projects/p/locations/europe-west4/clusters/studio",
      initial_node_count: 0,
      autoscaling: { total_min_node_count: 0, total_max_node_count: 3, location_policy: "ANY" },
      node_config: {
        machine_type: "a2-highgpu-2g",
        spot: true,
        taint: [{ key: "nvidia.com/gpu", value: "present", effect: "NO_SCHEDULE" }],
        guest_accelerator: [{ type: "nvidia-tesla-a100", count: 2, gpu_driver_installation_config: { gpu_driver_version: "LATEST" }, gpu_partition_size: "1g.5gb" }],
      },
    });
    expect(np!.node_config.guest_accelerator[0].gpu_sharing_config).toBeUndefined();
    expect(np!.node_config.labels).toEqual(pool.nodeSelector);
    expect(pool.nodeSelector).toEqual({ "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "nvidia.com/device-plugin.config": "infer", "nvidia.com/mig.config": "infer" });
    expect([pool.model, pool.gpusPerNode, pool.devicesPerGpu]).toEqual([GpuModel.A100_40GB, 2, 7]);
  });

  it("time-shares through gpu_sharing_config", () => {
    const gcp = new TerraformStack(Testing.app(), "gcp");
    new GkeGpuNodePool(gcp, "sketch", gkeProps({ machineType: "g2-standard-24", sharing: GpuSharing.timeSlicing(3), gpuDriverVersion: "DEFAULT" }));
    const [np] = resources(gcp, "google_container_node_pool");
    expect(np!.node_config.guest_accelerator).toEqual([
      { type: "nvidia-l4", count: 2, gpu_driver_installation_config: { gpu_driver_version: "DEFAULT" }, gpu_sharing_config: { gpu_sharing_strategy: "TIME_SHARING", max_shared_clients_per_gpu: 3 } },
    ]);
    expect(np!.node_config.spot).toBe(false);
    expect(np!.autoscaling.location_policy).toBe("BALANCED");
  });

  it("refuses MIG layouts GKE cannot make and an unknown machine type without its accelerator", () => {
    const gcp = new TerraformStack(Testing.app(), "gcp");
    expect(messages(() => new GkeGpuNodePool(gcp, "mig", gkeProps({ sharing: GpuSharing.mig({ "3g.20gb": 1, "1g.5gb": 4 }) })))).toEqual([
      expect.stringMatching(/^sharing: has several MIG profiles but a GKE node pool partitions every GPU with one \(gpu_partition_size\)/),
      "sharing.profiles[\"3g.20gb\"]: is 1 but GKE makes 2 '3g.20gb' instances of every GPU: give 2",
      "sharing.profiles[\"1g.5gb\"]: is 4 but GKE makes 7 '1g.5gb' instances of every GPU: give 7",
    ]);
    expect(messages(() => new GkeGpuNodePool(gcp, "new", gkeProps({ machineType: "g4-standard-48" })))).toEqual([
      expect.stringMatching(/^machineType: 'g4-standard-48' is not a GKE machine type gpufabric knows the GPUs of: declare them with gpu: .* acceleratorType: 'nvidia-l4'/),
    ]);
    expect(messages(() => new GkeGpuNodePool(gcp, "new", gkeProps({ machineType: "g4-standard-48", gpu: { model: GpuModel.L4_24GB, count: 1 } })))).toEqual([
      expect.stringMatching(/^acceleratorType: is required for a machine type gpufabric does not know/),
    ]);
  });
});

const aksProps = (over: Partial<AksGpuNodePoolProps> = {}): AksGpuNodePoolProps => ({
  kubernetesClusterId: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/studio",
  vmSize: "Standard_NC24ads_A100_v4",
  maxNodes: 6,
  ...over,
});

describe("AksGpuNodePool", () => {
  it("synthesizes a user node pool with the GPU VM size, autoscaling from zero, labels and the GPU taint", () => {
    const app = Testing.app();
    const azure = new TerraformStack(app, "azure");
    const nodes = new AksGpuNodePool(azure, "render-a100", aksProps());
    const pool = new GpuPool(new FabricStack(app, "k8s"), "pool", { nodePool: nodes });
    const [np] = resources(azure, "azurerm_kubernetes_cluster_node_pool");
    expect(np).toMatchObject({
      name: "rendera100",
      vm_size: "Standard_NC24ads_A100_v4",
      mode: "User",
      auto_scaling_enabled: true,
      min_count: 0,
      max_count: 6,
      node_count: 0,
      priority: "Regular",
      gpu_driver: "Install",
      node_taints: ["nvidia.com/gpu=present:NoSchedule"],
      lifecycle: { ignore_changes: ["node_count"] },
    });
    expect(np!.node_labels).toEqual(pool.nodeSelector);
    // The NC A100 v4 carries the PCIe card, whose product label is not the SXM4 module's.
    expect(pool.nodeSelector["nvidia.com/gpu.product"]).toBe("NVIDIA-A100-80GB-PCIe");
    expect(() => new GpuPool(new FabricStack(app, "k8s2"), "pool", { nodePool: nodes, model: GpuModel.A100_80GB })).toThrow(/model: is A100-80GB but node pool .* has A100-80GB-PCIe GPUs/);
  });

  it("puts spot nodes on spot priority and makes the pool tolerate AKS's spot taint; MIG as gpu_instance", () => {
    const app = Testing.app();
    const azure = new TerraformStack(app, "azure");
    const nodes = new AksGpuNodePool(azure, "burst", aksProps({ vmSize: "Standard_ND96isr_H100_v5", spot: true, sharing: GpuSharing.mig({ "3g.40gb": 2 }) }));
    const pool = new GpuPool(new FabricStack(app, "k8s"), "pool", { nodePool: nodes });
    const [np] = resources(azure, "azurerm_kubernetes_cluster_node_pool");
    expect(np).toMatchObject({ priority: "Spot", eviction_policy: "Delete", spot_max_price: -1, gpu_instance: "MIG3g" });
    expect(np!.node_taints).toEqual(["nvidia.com/gpu=present:NoSchedule", "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]);
    expect(pool.tolerations.map((t) => t.key)).toEqual(["nvidia.com/gpu", "kubernetes.azure.com/scalesetpriority"]);
    expect([pool.gpusPerNode, pool.devicesPerGpu, pool.gpuResourceName]).toEqual([8, 2, "nvidia.com/gpu"]);
  });

  it("refuses time-slicing (an AKS pool does not configure it), a node pool name AKS rejects and a VM size without its GPUs", () => {
    const azure = new TerraformStack(Testing.app(), "azure");
    expect(messages(() => new AksGpuNodePool(azure, "x", aksProps({ sharing: GpuSharing.timeSlicing(2), nodePoolName: "Too-Long-Name-1" })))).toEqual([
      expect.stringMatching(/^sharing: is time-slicing, which an AKS node pool does not configure/),
      expect.stringMatching(/^nodePoolName: "Too-Long-Name-1" is not an AKS node pool name/),
    ]);
    expect(messages(() => new AksGpuNodePool(azure, "y", aksProps({ vmSize: "Standard_NC4as_T4_v3" })))).toEqual([
      expect.stringMatching(/^vmSize: 'Standard_NC4as_T4_v3' is not an Azure VM size gpufabric knows the GPUs of: declare them with gpu: \{ model: .*Standard_NC24ads_A100_v4/),
    ]);
  });
});

describe("loading a provider module", () => {
  it("names the wanted version when the installed provider lacks the module (another major version) instead of calling it missing", () => {
    expect(() => loadProviderModule("@cdktf/provider-aws", "lib/no-such-resource/index.js", "gpufabric/aws")).toThrow(
      /^gpufabric\/aws needs the optional peer dependency @cdktf\/provider-aws@'~20\.1\.0', but the installed 20\.1\.\d+ has no lib\/no-such-resource\/index\.js: run npm install @cdktf\/provider-aws@'~20\.1\.0'$/,
    );
    // The module the node pool builds on is the provider's own class, loaded once.
    const { EksNodeGroup } = loadProviderModule<{ EksNodeGroup: new (...args: never[]) => unknown }>("@cdktf/provider-aws", "lib/eks-node-group/index.js", "gpufabric/aws");
    const nodes = new EksGpuNodePool(new TerraformStack(Testing.app(), "aws"), "x", eksProps());
    expect(nodes.nodeGroup).toBeInstanceOf(EksNodeGroup);
  });
});
