import type { AutoscalingGroupTagA as AutoscalingGroupTagClass } from "@cdktf/provider-aws/lib/autoscaling-group-tag/index.js";
import type { EksNodeGroup as EksNodeGroupClass } from "@cdktf/provider-aws/lib/eks-node-group/index.js";
import type { ITerraformDependable } from "cdktf";
import type { Construct } from "constructs";
import { gpuNodeResources } from "../gpu-node-pool.ts";
import { PropIssues } from "../validation.ts";
import { AWS_INSTANCE_TYPES, unknownInstanceType } from "../cloud/instance-catalog.ts";
import { loadProviderModule } from "../cloud/load-provider.ts";
import { CloudGpuNodePool, resolveNodePoolProps, type GpuNodePoolProps, type ResolvedNodePool } from "../cloud/node-pool-base.ts";

const { EksNodeGroup } = loadProviderModule<{ EksNodeGroup: typeof EksNodeGroupClass }>("@cdktf/provider-aws", "lib/eks-node-group/index.js", "gpufabric/aws");
const { AutoscalingGroupTagA: AutoscalingGroupTag } = loadProviderModule<{ AutoscalingGroupTagA: typeof AutoscalingGroupTagClass }>(
  "@cdktf/provider-aws",
  "lib/autoscaling-group-tag/index.js",
  "gpufabric/aws",
);

/** EKS's AMI type for Amazon Linux 2023 with the NVIDIA driver and container toolkit installed. */
export const EKS_NVIDIA_AMI_TYPE = "AL2023_x86_64_NVIDIA";

/** The tag prefix cluster-autoscaler reads a node group's future nodes from while it has none. */
export const NODE_TEMPLATE_TAG = "k8s.io/cluster-autoscaler/node-template";

export interface EksGpuNodePoolProps extends GpuNodePoolProps {
  /** Name of the EKS cluster. */
  readonly clusterName: string;
  /** ARN of the IAM role the nodes run as (with the EKS worker node, CNI and ECR read-only policies). */
  readonly nodeRoleArn: string;
  /** Subnets the nodes start in. */
  readonly subnetIds: string[];
  /**
   * EC2 instance types; several spread spot capacity, and must have the same GPUs (the autoscaler assumes
   * every node of a group is alike).
   */
  readonly instanceTypes: readonly string[];
  /**
   * Root volume size in GiB: GPU container images are large.
   * @default 100
   */
  readonly diskSizeGiB?: number;
  /**
   * Name of the managed node group.
   * @default the pool name
   */
  readonly nodeGroupName?: string;
  /**
   * AWS tags on the node group.
   * @default {}
   */
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * Resources the node group waits for, such as the attachments of its role's policies (nodes without them cannot join).
   * @default []
   */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * An EKS managed node group of GPU nodes for one GpuPool: the NVIDIA AL2023 AMI, on-demand or spot capacity,
 * scaling from `minNodes` (0 by default) to `maxNodes`, the labels and taint the GpuPool selects and tolerates,
 * and the cluster-autoscaler node-template tags on its Auto Scaling group, so the autoscaler can start the
 * first node of an empty group for a pending GPU pod.
 */
export class EksGpuNodePool extends CloudGpuNodePool {
  readonly cloud = "aws" as const;
  readonly nodeGroup: EksNodeGroupClass;
  /** The cluster-autoscaler node-template tags, as put on the Auto Scaling group. */
  readonly nodeTemplateTags: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: EksGpuNodePoolProps) {
    const resolved = validate(id, props);
    super(scope, id, props.instanceTypes[0]!, resolved);
    const capacityType = this.spot ? "SPOT" : "ON_DEMAND";
    this.nodeTemplateTags = Object.freeze(nodeTemplateTags(this));
    this.nodeGroup = new EksNodeGroup(this, "node-group", {
      clusterName: props.clusterName,
      nodeGroupName: props.nodeGroupName ?? this.poolName,
      nodeRoleArn: props.nodeRoleArn,
      subnetIds: props.subnetIds,
      amiType: EKS_NVIDIA_AMI_TYPE,
      instanceTypes: [...props.instanceTypes],
      capacityType,
      diskSize: props.diskSizeGiB ?? 100,
      labels: { ...this.nodeLabels },
      taint: this.taints.map((t) => ({ key: t.key, value: t.value, effect: "NO_SCHEDULE" })),
      scalingConfig: { minSize: this.minNodes, maxSize: this.maxNodes, desiredSize: this.minNodes },
      tags: { ...props.tags, ...this.nodeTemplateTags },
      // The autoscaler owns the desired size once the group exists; a later deploy must not reset it.
      lifecycle: { ignoreChanges: ["scaling_config[0].desired_size"] },
      ...(props.dependsOn?.length ? { dependsOn: [...props.dependsOn] } : {}),
    });
    // EKS copies neither labels nor the group's tags onto its Auto Scaling group, which is where
    // cluster-autoscaler looks for node-template tags: tag the group EKS made.
    const asgName = this.nodeGroup.resources.get(0).autoscalingGroups.get(0).name;
    Object.entries(this.nodeTemplateTags).forEach(([key, value], i) => {
      new AutoscalingGroupTag(this, `node-template-${i}`, { autoscalingGroupName: asgName, tag: { key, value, propagateAtLaunch: false } });
    });
  }
}

/** Labels, taints and GPU resources of a node the group has not started yet, in cluster-autoscaler's tag format. */
function nodeTemplateTags(pool: CloudGpuNodePool): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [key, value] of Object.entries(pool.nodeLabels)) tags[`${NODE_TEMPLATE_TAG}/label/${key}`] = value;
  for (const taint of pool.taints) tags[`${NODE_TEMPLATE_TAG}/taint/${taint.key}`] = `${taint.value}:${taint.effect}`;
  for (const [resource, count] of Object.entries(gpuNodeResources(pool.model, pool.sharing, pool.gpusPerNode))) {
    tags[`${NODE_TEMPLATE_TAG}/resources/${resource}`] = String(count);
  }
  return tags;
}

function validate(id: string, props: EksGpuNodePoolProps): ResolvedNodePool {
  // Runs before the construct is added to its scope: a refused node pool leaves nothing behind to detach.
  const issues = new PropIssues(`EksGpuNodePool '${props?.pool ?? id.toLowerCase()}'`);
  const types = props?.instanceTypes ?? [];
  if (!Array.isArray(types) || types.length === 0) issues.add("instanceTypes", "is empty: give at least one GPU instance type, e.g. ['g6e.xlarge']");
  const known = Object.keys(AWS_INSTANCE_TYPES);
  const declare = "gpu: { model: GpuModel.L4_24GB, count: 1 }";
  const first = types[0] !== undefined ? AWS_INSTANCE_TYPES[types[0]] : undefined;
  const resolved = resolveNodePoolProps(issues, id, props, first, () => (types.length > 0 ? unknownInstanceType("aws", String(types[0]), known, declare) : undefined), "instanceTypes[0]");
  types.slice(1).forEach((type, i) => {
    const gpus = AWS_INSTANCE_TYPES[type];
    if (gpus === undefined && props.gpu === undefined) issues.add(`instanceTypes[${i + 1}]`, unknownInstanceType("aws", type, known, declare));
    else if (gpus && (gpus.model !== resolved.model || gpus.count !== resolved.gpusPerNode)) {
      issues.add(
        `instanceTypes[${i + 1}]`,
        `'${type}' has ${gpus.count} × ${gpus.model} but '${types[0]}' has ${resolved.gpusPerNode} × ${resolved.model}: the types of one node group must have the same GPUs; declare another EksGpuNodePool for it`,
      );
    }
  });
  if (typeof props?.clusterName !== "string" || props.clusterName === "") issues.add("clusterName", "is required: give the EKS cluster's name");
  if (typeof props?.nodeRoleArn !== "string" || props.nodeRoleArn === "") issues.add("nodeRoleArn", "is required: give the ARN of the nodes' IAM role");
  if (!Array.isArray(props?.subnetIds) || props.subnetIds.length === 0) issues.add("subnetIds", "is empty: give the subnets the nodes start in");
  if (props?.diskSizeGiB !== undefined) issues.positiveInt("diskSizeGiB", props.diskSizeGiB);
  const groupName = props?.nodeGroupName ?? resolved.poolName;
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(groupName)) {
    issues.add("nodeGroupName", `${JSON.stringify(groupName)} is not an EKS node group name: use at most 63 letters, digits, '-' or '_', starting with a letter or digit`);
  }
  issues.throwIfAny();
  return resolved;
}
