import type { ContainerNodePool as ContainerNodePoolClass } from "@cdktf/provider-google/lib/container-node-pool/index.js";
import type { Construct } from "constructs";
import { GCP_MACHINE_TYPES, unknownInstanceType } from "../cloud/instance-catalog.ts";
import { loadProviderModule } from "../cloud/load-provider.ts";
import { checkCloudMigPartition, CloudGpuNodePool, resolveNodePoolProps, type GpuNodePoolProps, type ResolvedNodePool } from "../cloud/node-pool-base.ts";
import { PropIssues } from "../validation.ts";

const { ContainerNodePool } = loadProviderModule<{ ContainerNodePool: typeof ContainerNodePoolClass }>(
  "@cdktf/provider-google",
  "lib/container-node-pool/index.js",
  "gpufabric/gcp",
);

/** GKE's driver installation choices: `INSTALLATION_DISABLED` when the NVIDIA GPU Operator installs the driver. */
export const GKE_GPU_DRIVER_VERSIONS = ["DEFAULT", "LATEST", "INSTALLATION_DISABLED"] as const;

export interface GkeGpuNodePoolProps extends GpuNodePoolProps {
  /** The GKE cluster (its id or name). */
  readonly cluster: string;
  /**
   * Region or zone of the cluster.
   * @default the provider's
   */
  readonly location?: string;
  /** An accelerator-optimized machine type, e.g. `a3-highgpu-8g` or `g2-standard-8`. */
  readonly machineType: string;
  /**
   * The `guest_accelerator` type, for a machine type gpufabric's catalog lacks (with `gpu`).
   * @default the catalog's accelerator for the machine type
   */
  readonly acceleratorType?: string;
  /**
   * Which NVIDIA driver GKE installs.
   * @default "LATEST"
   */
  readonly gpuDriverVersion?: (typeof GKE_GPU_DRIVER_VERSIONS)[number];
  /**
   * Name of the GKE node pool.
   * @default the pool name
   */
  readonly nodePoolName?: string;
  /**
   * The service account the nodes run as.
   * @default the Compute Engine default service account
   */
  readonly serviceAccount?: string;
}

/**
 * A GKE node pool of GPU nodes for one GpuPool: `guest_accelerator` with the machine type's GPUs, GKE's driver
 * installation, MIG as `gpu_partition_size` and time-slicing as `gpu_sharing_config`, autoscaling from
 * `minNodes` (0 by default), spot VMs, and the labels and taint the GpuPool selects and tolerates. GKE's
 * autoscaler reads the pool's template itself, so scale-from-zero needs no extra tags.
 */
export class GkeGpuNodePool extends CloudGpuNodePool {
  readonly cloud = "gcp" as const;
  readonly nodePool: ContainerNodePoolClass;

  constructor(scope: Construct, id: string, props: GkeGpuNodePoolProps) {
    const { resolved, accelerator } = validate(id, props);
    super(scope, id, props.machineType, resolved);
    const profiles = Object.keys(this.sharing.migProfiles);
    this.nodePool = new ContainerNodePool(this, "node-pool", {
      name: props.nodePoolName ?? this.poolName,
      cluster: props.cluster,
      ...(props.location !== undefined ? { location: props.location } : {}),
      initialNodeCount: this.minNodes,
      // total_*: bounds over all the pool's zones, as minNodes and maxNodes mean on the other clouds.
      autoscaling: { totalMinNodeCount: this.minNodes, totalMaxNodeCount: this.maxNodes, locationPolicy: this.spot ? "ANY" : "BALANCED" },
      management: { autoRepair: true, autoUpgrade: true },
      nodeConfig: {
        machineType: props.machineType,
        spot: this.spot,
        labels: { ...this.nodeLabels },
        taint: this.taints.map((t) => ({ key: t.key, value: t.value, effect: "NO_SCHEDULE" })),
        oauthScopes: ["https://www.googleapis.com/auth/cloud-platform"],
        ...(props.serviceAccount !== undefined ? { serviceAccount: props.serviceAccount } : {}),
        guestAccelerator: [
          {
            type: accelerator,
            count: this.gpusPerNode,
            gpuDriverInstallationConfig: { gpuDriverVersion: props.gpuDriverVersion ?? "LATEST" },
            ...(profiles.length === 1 ? { gpuPartitionSize: profiles[0] } : {}),
            ...(this.sharing.mode === "time-slicing" ? { gpuSharingConfig: { gpuSharingStrategy: "TIME_SHARING", maxSharedClientsPerGpu: this.sharing.replicas } } : {}),
          },
        ],
      },
    });
  }
}

function validate(id: string, props: GkeGpuNodePoolProps): { resolved: ResolvedNodePool; accelerator: string } {
  // Runs before the construct is added to its scope: a refused node pool leaves nothing behind to detach.
  const issues = new PropIssues(`GkeGpuNodePool '${props?.pool ?? id.toLowerCase()}'`);
  const machineType = props?.machineType;
  const known = GCP_MACHINE_TYPES[machineType];
  const declare = "gpu: { model: GpuModel.L4_24GB, count: 1 } and acceleratorType: 'nvidia-l4'";
  const resolved = resolveNodePoolProps(issues, id, props, known, () => unknownInstanceType("gcp", String(machineType), Object.keys(GCP_MACHINE_TYPES), declare), "machineType");
  const accelerator = props?.acceleratorType ?? known?.accelerator;
  if (accelerator === undefined && props?.gpu !== undefined) issues.add("acceleratorType", "is required for a machine type gpufabric does not know: give its guest_accelerator type, e.g. 'nvidia-l4'");
  checkCloudMigPartition(issues, resolved, "GKE", "gpu_partition_size");
  if (typeof props?.cluster !== "string" || props.cluster === "") issues.add("cluster", "is required: give the GKE cluster's id or name");
  if (props?.gpuDriverVersion !== undefined) issues.oneOf("gpuDriverVersion", props.gpuDriverVersion, GKE_GPU_DRIVER_VERSIONS);
  const name = props?.nodePoolName ?? resolved.poolName;
  if (!/^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$/.test(name)) {
    issues.add("nodePoolName", `${JSON.stringify(name)} is not a GKE node pool name: use at most 40 lowercase letters, digits or '-', starting with a letter`);
  }
  issues.throwIfAny();
  return { resolved, accelerator: accelerator! };
}
