/**
 * What the three clouds' GPU node pools share: the props every one takes, their checks, and the labels
 * and taints their nodes get. Loads no provider package.
 */
import { Construct } from "constructs";
import { GpuModel, MIG_COMPUTE_SLICES, MIG_MEMORY_SLICES } from "../gpu-model.ts";
import { GPU_LABELS, GPU_TAINT, gpuNodeLabels, type GpuNodePool, type NodeTaint } from "../gpu-node-pool.ts";
import { GpuSharing } from "../gpu-sharing.ts";
import type { PropIssues } from "../validation.ts";
import type { InstanceGpus } from "./instance-catalog.ts";

export interface GpuNodePoolProps {
  /**
   * Name of the GpuPool these nodes serve (the value of its device-plugin and MIG config labels); a GpuPool
   * given this node pool takes the name.
   * @default the construct id, lower-cased
   */
  readonly pool?: string;
  /**
   * The GPUs of an instance type gpufabric's catalog does not list, e.g. `{ model: GpuModel.L4_24GB, count: 1 }`.
   * @default the catalog's entry for the instance type
   */
  readonly gpu?: InstanceGpus;
  /**
   * How the nodes' GPUs are shared; the GpuPool takes it.
   * @default GpuSharing.exclusive()
   */
  readonly sharing?: GpuSharing;
  /**
   * Fewest nodes; 0 lets the pool scale to zero when no work waits.
   * @default 0
   */
  readonly minNodes?: number;
  /** Most nodes the autoscaler may start. */
  readonly maxNodes: number;
  /**
   * Run on spot (preemptible) capacity: cheaper, and reclaimed by the cloud at short notice.
   * @default false
   */
  readonly spot?: boolean;
  /**
   * Extra node labels; the GpuPool selects on them too.
   * @default {}
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/** The shared props checked and defaulted: the GpuNodePool fields they decide. */
export type ResolvedNodePool = Pick<GpuNodePool, "poolName" | "model" | "gpusPerNode" | "sharing" | "minNodes" | "maxNodes" | "spot" | "extraLabels">;

/** Checks the shared props, adding each problem to `issues`; `catalogGpus` is the instance type's catalog entry. */
export function resolveNodePoolProps(issues: PropIssues, id: string, props: GpuNodePoolProps, catalogGpus: InstanceGpus | undefined, unknownType: () => string | undefined, typeField: string): ResolvedNodePool {
  const poolName = props?.pool ?? id.toLowerCase();
  issues.dnsLabel(props?.pool === undefined ? "pool (defaults to the id, lower-cased)" : "pool", poolName, 63 - "-device-plugin".length);
  let gpus = catalogGpus;
  if (props?.gpu !== undefined) {
    if (!(props.gpu.model instanceof GpuModel)) issues.add("gpu.model", "is not a GpuModel: pass e.g. GpuModel.L4_24GB, or GpuModel.custom({...})");
    if (issues.positiveInt("gpu.count", props.gpu.count) && props.gpu.model instanceof GpuModel) gpus = props.gpu;
    if (catalogGpus && gpus === props.gpu && (catalogGpus.model !== props.gpu.model || catalogGpus.count !== props.gpu.count)) {
      issues.add("gpu", `says ${props.gpu.count} × ${props.gpu.model} but the catalog has ${catalogGpus.count} × ${catalogGpus.model} for this type: leave gpu out`);
    }
  } else if (catalogGpus === undefined) {
    const message = unknownType();
    if (message !== undefined) issues.add(typeField, message);
  }
  const sharing = props?.sharing ?? GpuSharing.exclusive();
  if (!(sharing instanceof GpuSharing)) issues.add("sharing", "is not a GpuSharing: use GpuSharing.exclusive(), GpuSharing.mig({...}) or GpuSharing.timeSlicing(n)");
  else if (gpus && sharing.mode === "mig") {
    for (const profile of Object.keys(sharing.migProfiles)) {
      if (!gpus.model.migProfiles.has(profile)) {
        const offered = [...gpus.model.migProfiles.keys()];
        issues.add(`sharing.profiles[${JSON.stringify(profile)}]`, offered.length ? `'${profile}' is not a MIG profile of ${gpus.model}: use one of ${offered.join(", ")}` : `${gpus.model} has no MIG: use GpuSharing.timeSlicing(n) or exclusive()`);
      }
    }
  }
  const minNodes = props?.minNodes ?? 0;
  issues.nonNegativeInt("minNodes", minNodes);
  if (issues.positiveInt("maxNodes", props?.maxNodes) && Number.isInteger(minNodes) && minNodes > props.maxNodes) {
    issues.add("minNodes", `${minNodes} is above maxNodes (${props.maxNodes}): lower minNodes or raise maxNodes`);
  }
  issues.labels("labels", props?.labels, Object.values(GPU_LABELS));
  return {
    poolName,
    model: gpus?.model ?? GpuModel.L4_24GB,
    gpusPerNode: gpus?.count ?? 1,
    sharing: sharing instanceof GpuSharing ? sharing : GpuSharing.exclusive(),
    minNodes,
    maxNodes: props?.maxNodes,
    spot: props?.spot ?? false,
    extraLabels: Object.freeze({ ...props?.labels }),
  };
}

/** The fields every cloud's node pool exposes to a GpuPool. */
export abstract class CloudGpuNodePool extends Construct implements GpuNodePool {
  abstract readonly cloud: GpuNodePool["cloud"];
  readonly poolName: string;
  readonly instanceType: string;
  readonly model: GpuModel;
  readonly gpusPerNode: number;
  readonly sharing: GpuSharing;
  readonly minNodes: number;
  readonly maxNodes: number;
  readonly spot: boolean;
  readonly extraLabels: Readonly<Record<string, string>>;
  readonly nodeLabels: Readonly<Record<string, string>>;
  readonly taints: readonly NodeTaint[];

  protected constructor(scope: Construct, id: string, instanceType: string, resolved: ResolvedNodePool, extraTaints: readonly NodeTaint[] = []) {
    super(scope, id);
    this.poolName = resolved.poolName;
    this.instanceType = instanceType;
    this.model = resolved.model;
    this.gpusPerNode = resolved.gpusPerNode;
    this.sharing = resolved.sharing;
    this.minNodes = resolved.minNodes;
    this.maxNodes = resolved.maxNodes;
    this.spot = resolved.spot;
    this.extraLabels = resolved.extraLabels;
    this.nodeLabels = Object.freeze({ ...resolved.extraLabels, ...gpuNodeLabels(resolved.poolName, resolved.model, resolved.sharing) });
    this.taints = Object.freeze([GPU_TAINT, ...extraTaints]);
  }
}

/**
 * GKE (gpu_partition_size) and AKS (gpu_instance) partition every GPU with one MIG profile, into as many
 * instances as fit: a pool counting a different number, or several profiles, would misstate its devices.
 */
export function checkCloudMigPartition(issues: PropIssues, resolved: ResolvedNodePool, cloud: string, setting: string): void {
  const profiles = Object.entries(resolved.sharing.migProfiles);
  if (profiles.length > 1) issues.add("sharing", `has several MIG profiles but a ${cloud} node pool partitions every GPU with one (${setting}): use one profile per node pool`);
  for (const [profile, count] of profiles) {
    const spec = resolved.model.migProfiles.get(profile);
    if (spec === undefined) continue;
    const fit = Math.min(Math.floor(MIG_COMPUTE_SLICES / spec.computeSlices), Math.floor(MIG_MEMORY_SLICES / (spec.memorySlices ?? 1)));
    if (count !== fit) issues.add(`sharing.profiles[${JSON.stringify(profile)}]`, `is ${count} but ${cloud} makes ${fit} '${profile}' instances of every GPU: give ${fit}`);
  }
}
