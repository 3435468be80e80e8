import type { KubernetesClusterNodePool as KubernetesClusterNodePoolClass } from "@cdktf/provider-azurerm/lib/kubernetes-cluster-node-pool/index.js";
import type { Construct } from "constructs";
import { AZURE_VM_SIZES, unknownInstanceType } from "../cloud/instance-catalog.ts";
import { loadProviderModule } from "../cloud/load-provider.ts";
import { checkCloudMigPartition, CloudGpuNodePool, resolveNodePoolProps, type GpuNodePoolProps, type ResolvedNodePool } from "../cloud/node-pool-base.ts";
import type { NodeTaint } from "../gpu-node-pool.ts";
import { PropIssues } from "../validation.ts";

const { KubernetesClusterNodePool } = loadProviderModule<{ KubernetesClusterNodePool: typeof KubernetesClusterNodePoolClass }>(
  "@cdktf/provider-azurerm",
  "lib/kubernetes-cluster-node-pool/index.js",
  "gpufabric/azure",
);

/** The taint AKS puts on every spot node; the pool's workloads must tolerate it to land there. */
export const AKS_SPOT_TAINT: NodeTaint = Object.freeze({ key: "kubernetes.azure.com/scalesetpriority", value: "spot", effect: "NoSchedule" });

export interface AksGpuNodePoolProps extends GpuNodePoolProps {
  /** Id of the AKS cluster. */
  readonly kubernetesClusterId: string;
  /** A GPU VM size, e.g. `Standard_NC24ads_A100_v4`. */
  readonly vmSize: string;
  /**
   * Name of the AKS node pool: at most 12 lowercase letters and digits, starting with a letter.
   * @default the pool name without its '-', cut to 12 characters
   */
  readonly nodePoolName?: string;
  /**
   * Whether AKS installs the NVIDIA driver: "None" when the NVIDIA GPU Operator installs it.
   * @default "Install"
   */
  readonly gpuDriver?: "Install" | "None";
  /**
   * Availability zones of the nodes.
   * @default none (regional)
   */
  readonly zones?: string[];
  /**
   * Subnet of the nodes.
   * @default the cluster's
   */
  readonly vnetSubnetId?: string;
}

/**
 * An AKS node pool of GPU nodes for one GpuPool: a GPU VM size, autoscaling from `minNodes` (0 by default),
 * spot priority, MIG as `gpu_instance`, and the labels and taints the GpuPool selects and tolerates (spot
 * nodes carry AKS's spot taint too). AKS's cluster-autoscaler reads the pool's labels and taints itself.
 */
export class AksGpuNodePool extends CloudGpuNodePool {
  readonly cloud = "azure" as const;
  readonly nodePool: KubernetesClusterNodePoolClass;

  constructor(scope: Construct, id: string, props: AksGpuNodePoolProps) {
    const { resolved, name } = validate(id, props);
    super(scope, id, props.vmSize, resolved, resolved.spot ? [AKS_SPOT_TAINT] : []);
    const profiles = Object.keys(this.sharing.migProfiles);
    this.nodePool = new KubernetesClusterNodePool(this, "node-pool", {
      name,
      kubernetesClusterId: props.kubernetesClusterId,
      vmSize: props.vmSize,
      mode: "User",
      autoScalingEnabled: true,
      minCount: this.minNodes,
      maxCount: this.maxNodes,
      nodeCount: this.minNodes,
      nodeLabels: { ...this.nodeLabels },
      nodeTaints: this.taints.map((t) => `${t.key}=${t.value}:${t.effect}`),
      gpuDriver: props.gpuDriver ?? "Install",
      ...(profiles.length === 1 ? { gpuInstance: `MIG${this.model.migProfiles.get(profiles[0]!)!.computeSlices}g` } : {}),
      ...(this.spot ? { priority: "Spot", evictionPolicy: "Delete", spotMaxPrice: -1 } : { priority: "Regular" }),
      ...(props.zones !== undefined ? { zones: props.zones } : {}),
      ...(props.vnetSubnetId !== undefined ? { vnetSubnetId: props.vnetSubnetId } : {}),
      // The autoscaler owns the node count once the pool exists; a later deploy must not reset it.
      lifecycle: { ignoreChanges: ["node_count"] },
    });
  }
}

function validate(id: string, props: AksGpuNodePoolProps): { resolved: ResolvedNodePool; name: string } {
  // Runs before the construct is added to its scope: a refused node pool leaves nothing behind to detach.
  const issues = new PropIssues(`AksGpuNodePool '${props?.pool ?? id.toLowerCase()}'`);
  const known = AZURE_VM_SIZES[props?.vmSize];
  const declare = "gpu: { model: GpuModel.H100_80GB, count: 8 }";
  const resolved = resolveNodePoolProps(issues, id, props, known, () => unknownInstanceType("azure", String(props?.vmSize), Object.keys(AZURE_VM_SIZES), declare), "vmSize");
  if (resolved.sharing.mode === "time-slicing") {
    issues.add("sharing", "is time-slicing, which an AKS node pool does not configure: use GpuSharing.exclusive() or GpuSharing.mig({...}) here, or time-slice through the NVIDIA GPU Operator on nodes labelled by hand (see the README's on-prem steps)");
  }
  checkCloudMigPartition(issues, resolved, "AKS", "gpu_instance");
  if (typeof props?.kubernetesClusterId !== "string" || props.kubernetesClusterId === "") issues.add("kubernetesClusterId", "is required: give the AKS cluster's id");
  if (props?.gpuDriver !== undefined) issues.oneOf("gpuDriver", props.gpuDriver, ["Install", "None"] as const);
  const name = props?.nodePoolName ?? resolved.poolName.replace(/-/g, "").slice(0, 12);
  if (!/^[a-z][a-z0-9]{0,11}$/.test(name)) {
    issues.add("nodePoolName", `${JSON.stringify(name)} is not an AKS node pool name: use at most 12 lowercase letters and digits, starting with a letter`);
  }
  issues.throwIfAny();
  return { resolved, name };
}
