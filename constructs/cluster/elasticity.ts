/**
 * Elastic workers for a cluster: the leading control plane computes how many workers the queue needs and
 * sets the replicas of the workers' StatefulSet through its scale subresource (provider `kubernetes`), or
 * only publishes the number for KEDA (provider `none`). Pending worker pods then bring GPU nodes up through
 * cluster-autoscaler or Karpenter; surplus pods drain before they exit.
 *
 * What this adds to the synthesis:
 *  - a Role allowing exactly get, patch and update on `statefulsets/scale` of the one worker StatefulSet
 *    (resourceNames), bound to the control planes' ServiceAccount; nothing else of the Kubernetes API;
 *  - the control planes' pods mount their service account token (they call the API server), and may reach
 *    the API server's ports;
 *  - the StatefulSet's replicas start at minWorkers (0: scale from zero) and Terraform ignores their later
 *    changes, so an apply never fights the scaler (or KEDA).
 */
import { RoleBindingV1 } from "@cdktf/provider-kubernetes/lib/role-binding-v1/index.js";
import { RoleV1 } from "@cdktf/provider-kubernetes/lib/role-v1/index.js";
import type { Construct } from "constructs";
import { ElasticitySchema, type ElasticityConfig } from "../../runtime/config/schema.ts";
import type { AgentMetadata } from "../agent/metadata.ts";
import type { GpuPool } from "../gpu-pool.ts";
import type { PropIssues } from "../validation.ts";

export interface ClusterElasticityProps {
  /** Workers kept however idle the pool is; 0 lets the pool (and its GPU nodes) scale to zero. @default 0 */
  readonly minWorkers?: number;
  /** Workers asked for at most. @default the pool's nodes */
  readonly maxWorkers?: number;
  /** Seconds of continuous surplus before idle workers are let go. @default runtime/config's ElasticitySchema (300) */
  readonly scaleDownCooldownSeconds?: number;
  /** Seconds a batch stage waits for freed GPUs before asking for a worker. @default runtime/config's ElasticitySchema (30) */
  readonly batchScaleUpDelaySeconds?: number;
  /**
   * `kubernetes`: the control plane sets the StatefulSet's replicas (the scale subresource). `none`: it only
   * publishes gpufabric_pool_desired_workers, for a KEDA ScaledObject (see README) to act on.
   * @default "kubernetes"
   */
  readonly provider?: "kubernetes" | "none";
  /**
   * Where the Kubernetes API server is, to narrow the control planes' egress to it (provider `kubernetes`):
   * its endpoint's CIDR (`kubectl get endpoints kubernetes`). A NetworkPolicy cannot select the API server by
   * label. @default any address, on ports 443 and 6443 only
   */
  readonly apiServerCidr?: string;
  /**
   * How long a worker told to go (a scale-down's SIGTERM) may take to finish its running stages before the
   * kubelet kills it: the worker pods' terminationGracePeriodSeconds. Give the longest stage's time, so a
   * scale-down never interrupts a stage. @default 3600
   */
  readonly drainGraceSeconds?: number;
}

/** The worker pods' grace period under elasticity, when drainGraceSeconds is not given. */
export const DEFAULT_DRAIN_GRACE_SECONDS = 3600;

/** The platform config's `cluster.elasticity` for the worker StatefulSet `workload` (`{ namespace, name }`). */
export function elasticityConfig(e: ClusterElasticityProps | undefined, workload: { namespace: string; name: string }): ElasticityConfig {
  if (e === undefined) return ElasticitySchema.parse({});
  const provider = e.provider ?? "kubernetes";
  return ElasticitySchema.parse({
    enabled: true,
    ...(e.minWorkers !== undefined && { minWorkers: e.minWorkers }),
    ...(e.maxWorkers !== undefined && { maxWorkers: e.maxWorkers }),
    ...(e.scaleDownCooldownSeconds !== undefined && { scaleDownCooldownSeconds: e.scaleDownCooldownSeconds }),
    ...(e.batchScaleUpDelaySeconds !== undefined && { batchScaleUpDelaySeconds: e.batchScaleUpDelaySeconds }),
    provider: provider === "kubernetes" ? { type: "kubernetes", namespace: workload.namespace, kind: "StatefulSet", name: workload.name } : { type: "none" },
  });
}

/** Adds the elasticity option's problems to `issues`, each under `cluster.elasticity.<field>`. */
export function validateElasticity(issues: PropIssues, e: ClusterElasticityProps, context: { pool: GpuPool; workerKind: string | undefined; replicas: number | undefined }): void {
  if (context.workerKind === "daemonset") {
    issues.add("cluster.elasticity", 'needs workers of kind "statefulset": a DaemonSet runs one worker on every node the pool selects and has no replica count to scale; drop workers.kind');
  }
  const min = e.minWorkers;
  const max = e.maxWorkers;
  const okMin = min === undefined || issues.nonNegativeInt("cluster.elasticity.minWorkers", min);
  const okMax = max === undefined || issues.positiveInt("cluster.elasticity.maxWorkers", max);
  if (okMax && max !== undefined && max > context.pool.nodes) {
    issues.add("cluster.elasticity.maxWorkers", `${max} workers for the ${context.pool.nodes} node(s) of pool '${context.pool.name}': each worker serves a node of its own; use at most ${context.pool.nodes}, or give the pool more nodes`);
  }
  if (okMin && okMax && min !== undefined && min > (max ?? context.pool.nodes)) {
    issues.add("cluster.elasticity.minWorkers", `${min} is above maxWorkers ${max ?? `(the pool's ${context.pool.nodes} nodes)`}: lower minWorkers or raise maxWorkers`);
  }
  if (context.replicas !== undefined && okMin && okMax && (context.replicas < (min ?? 0) || context.replicas > (max ?? context.pool.nodes))) {
    issues.add("cluster.workers.replicas", `${context.replicas} is outside elasticity's ${min ?? 0} to ${max ?? context.pool.nodes} workers: the scaler would change it at once; drop replicas (the StatefulSet starts at minWorkers)`);
  }
  for (const field of ["scaleDownCooldownSeconds", "batchScaleUpDelaySeconds"] as const) {
    if (e[field] === undefined) continue;
    // The runtime's own bounds, from its schema: a value it would refuse at start is refused here.
    const result = ElasticitySchema.shape[field].safeParse(e[field]);
    if (!result.success) issues.add(`cluster.elasticity.${field}`, `${JSON.stringify(e[field])}: ${result.error.issues.map((i) => i.message).join("; ")} (seconds)`);
  }
  if (e.provider !== undefined && e.provider !== "kubernetes" && e.provider !== "none") {
    issues.add("cluster.elasticity.provider", `${JSON.stringify(e.provider)} is not "kubernetes" (the control plane sets the replicas) or "none" (KEDA reads gpufabric_pool_desired_workers)`);
  }
  if (e.drainGraceSeconds !== undefined && issues.positiveInt("cluster.elasticity.drainGraceSeconds", e.drainGraceSeconds) && e.drainGraceSeconds > 86_400) {
    issues.add("cluster.elasticity.drainGraceSeconds", `${e.drainGraceSeconds} is more than a day (86400): a stage that long should checkpoint and run as several stages`);
  }
  if (e.apiServerCidr !== undefined && e.provider === "none") issues.add("cluster.elasticity.apiServerCidr", 'applies only to provider "kubernetes": with "none" the control planes never call the API server; drop it');
}

export interface WorkerScaleRbacProps {
  readonly meta: AgentMetadata;
  /** The control planes' ServiceAccount. */
  readonly serviceAccountName: string;
  /** The workers' StatefulSet. */
  readonly workloadName: string;
}

/**
 * The scaler's one permission: get, patch and update on `statefulsets/scale` of the worker StatefulSet,
 * by name. Not the StatefulSet itself (its pod template, its image), not any other workload.
 */
export class WorkerScaleRbac {
  readonly role: RoleV1;
  readonly roleBinding: RoleBindingV1;

  /** Adds its objects to `scope` itself, not to a child construct, so their Terraform addresses stay put. */
  constructor(scope: Construct, props: WorkerScaleRbacProps) {
    const { meta } = props;
    const name = `${meta.name}-worker-scale`;
    this.role = new RoleV1(scope, "WorkerScaleRole", {
      metadata: meta.of(name),
      rule: [{ apiGroups: ["apps"], resources: ["statefulsets/scale"], resourceNames: [props.workloadName], verbs: ["get", "patch", "update"] }],
    });
    this.roleBinding = new RoleBindingV1(scope, "WorkerScaleRoleBinding", {
      metadata: meta.of(name),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: this.role.metadata.name },
      subject: [{ kind: "ServiceAccount", name: props.serviceAccountName, namespace: meta.namespace }],
    });
  }
}
