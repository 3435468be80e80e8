/**
 * What a cloud GPU node pool (gpufabric/aws, gpufabric/gcp, gpufabric/azure) tells a GpuPool, and the
 * node labels, taints and extended resources both sides derive from the same inputs. This module loads no
 * cloud provider package: GpuPool imports it, and the core entry point must stay free of them.
 */
import type { IConstruct } from "constructs";
import { GpuModel } from "./gpu-model.ts";
import { GpuSharing } from "./gpu-sharing.ts";

/** GPU Feature Discovery / GPU Operator node labels the pool selects on. */
export const GPU_LABELS = {
  product: "nvidia.com/gpu.product",
  devicePluginConfig: "nvidia.com/device-plugin.config",
  migConfig: "nvidia.com/mig.config",
} as const;

/** Extended resource and taint the NVIDIA device plugin and GPU node pools use. */
export const GPU_RESOURCE = "nvidia.com/gpu";

/** A Kubernetes node taint a node pool puts on its nodes; workloads of its GpuPool tolerate each one. */
export interface NodeTaint {
  readonly key: string;
  readonly value: string;
  readonly effect: "NoSchedule";
}

/** The `nvidia.com/gpu=present:NoSchedule` taint every GPU node pool carries, so that only GPU work lands there. */
export const GPU_TAINT: NodeTaint = Object.freeze({ key: GPU_RESOURCE, value: "present", effect: "NoSchedule" });

/** A cloud node pool that creates GPU nodes for one GpuPool (EksGpuNodePool, GkeGpuNodePool, AksGpuNodePool). */
export interface GpuNodePool extends IConstruct {
  readonly cloud: "aws" | "gcp" | "azure";
  /** Name of the GpuPool whose nodes these are: the value of the device-plugin and MIG config labels. */
  readonly poolName: string;
  /** The instance type (machine type, VM size) of the nodes. */
  readonly instanceType: string;
  readonly model: GpuModel;
  readonly gpusPerNode: number;
  readonly sharing: GpuSharing;
  readonly minNodes: number;
  readonly maxNodes: number;
  readonly spot: boolean;
  /** Labels the nodes carry from the moment they join: the GpuPool's selector plus the pool's extra labels. */
  readonly nodeLabels: Readonly<Record<string, string>>;
  /** Labels given by the node pool's `labels` prop (not gpufabric's own). */
  readonly extraLabels: Readonly<Record<string, string>>;
  readonly taints: readonly NodeTaint[];
}

/** Tells a GpuNodePool from other objects a user may pass as GpuPool's `nodePool`. */
export function isGpuNodePool(value: unknown): value is GpuNodePool {
  const v = value as Partial<GpuNodePool> | undefined;
  return typeof v === "object" && v !== null && typeof v.poolName === "string" && v.model instanceof GpuModel && v.sharing instanceof GpuSharing && typeof v.gpusPerNode === "number";
}

/** MIG profiles in use, largest memory first (ties: more compute first). */
export function migProfilesBySize(model: GpuModel, sharing: GpuSharing): string[] {
  return Object.keys(sharing.migProfiles).sort((a, b) => {
    const pa = model.migProfiles.get(a)!;
    const pb = model.migProfiles.get(b)!;
    return pb.memoryMiB - pa.memoryMiB || pb.computeSlices - pa.computeSlices || a.localeCompare(b);
  });
}

/**
 * Labels GPU Feature Discovery and the GPU Operator put on a pool's nodes. GFD appends `-SHARED` to the
 * product label under time-slicing and `-MIG-<profile>` under the single MIG strategy, so the selector uses
 * the value the nodes really carry; a node pool sets the same values when it creates the nodes, so that an
 * autoscaler sees, before any node exists, that a new node would match.
 */
export function gpuNodeLabels(poolName: string, model: GpuModel, sharing: GpuSharing): Record<string, string> {
  switch (sharing.mode) {
    case "exclusive":
      return { [GPU_LABELS.product]: model.product };
    case "time-slicing":
      return { [GPU_LABELS.product]: `${model.product}-SHARED`, [GPU_LABELS.devicePluginConfig]: poolName };
    case "mig": {
      const profiles = Object.keys(sharing.migProfiles);
      const product = profiles.length === 1 ? `${model.product}-MIG-${profiles[0]}` : model.product;
      return { [GPU_LABELS.product]: product, [GPU_LABELS.devicePluginConfig]: poolName, [GPU_LABELS.migConfig]: poolName };
    }
  }
}

/**
 * The extended resources one node offers, by name: what cluster-autoscaler must assume of a node it has not
 * started yet. Time-slice replicas and MIG instances are counted as the device plugin advertises them.
 */
export function gpuNodeResources(model: GpuModel, sharing: GpuSharing, gpusPerNode: number): Record<string, number> {
  if (sharing.mode === "time-slicing") return { [GPU_RESOURCE]: gpusPerNode * sharing.replicas };
  if (sharing.mode !== "mig") return { [GPU_RESOURCE]: gpusPerNode };
  const profiles = migProfilesBySize(model, sharing);
  if (profiles.length === 1) return { [GPU_RESOURCE]: gpusPerNode * sharing.migProfiles[profiles[0]!]! };
  return Object.fromEntries(profiles.map((p) => [`nvidia.com/mig-${p}`, gpusPerNode * sharing.migProfiles[p]!]));
}
