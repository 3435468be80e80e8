import { containersOf, get, gpuAmounts, kindOf, namespaceOf, podUsesGpu, type PodTemplate } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Outcome, type Resource, type Rule } from "../model.ts";
import { quotaCovers } from "./gpu-namespace-quota.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

/** GPUs one pod holds per resource name: the sum over its containers, or the largest init container when that is more. */
function podGpus(pod: PodTemplate): Map<string, number> {
  const sums = new Map<string, number>();
  const inits = new Map<string, number>();
  for (const { container, path: cpath } of containersOf(pod)) {
    const isInit = cpath.includes("init_container");
    for (const [res, amount] of Object.entries({ ...gpuAmounts(container, "requests"), ...gpuAmounts(container, "limits") })) {
      const n = Number(amount);
      if (!Number.isFinite(n)) continue;
      if (isInit) inits.set(res, Math.max(inits.get(res) ?? 0, n));
      else sums.set(res, (sums.get(res) ?? 0) + n);
    }
  }
  for (const [res, n] of inits) sums.set(res, Math.max(sums.get(res) ?? 0, n));
  return sums;
}

/** Pods of the workload that run at once (DaemonSets: one per node, judged per pod). */
function concurrentPods(resource: Resource): { count: number; path: string } {
  const kind = kindOf(resource.type);
  const read = (p: (string | number)[], fallback: number) => {
    const v = Number(get(resource.attributes, p) ?? fallback);
    return Number.isFinite(v) ? v : fallback;
  };
  if (kind === "deployment" || kind === "stateful_set" || kind === "replication_controller") return { count: read(["spec", "replicas"], 1), path: "spec.replicas" };
  if (kind === "job") return { count: read(["spec", "parallelism"], 1), path: "spec.parallelism" };
  if (kind === "cron_job") return { count: read(["spec", "job_template", "spec", "parallelism"], 1), path: "spec.job_template.spec.parallelism" };
  return { count: 1, path: "" };
}

export const gpuRequestWithinQuota: Rule = {
  id: "GF-GPU-009",
  name: "gpu-request-within-quota",
  level: "error",
  title: "GPU workloads fit in the GPU quota of their namespace",
  rationale:
    "Kubernetes refuses pods whose GPU requests exceed a ResourceQuota that covers them; a workload asking for more GPUs than its namespace's quota never starts, and the failure only shows as admission errors on the ReplicaSet after deploy.",
  remediation:
    "Request at most the quota (e.g. the WorkflowDeployment's `gpus`), or raise the tenant quota on the GpuPool (`tenantQuotas`) for the segment the workload runs in.",
  controls: [controls.baseline("capacity")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      if (!podUsesGpu(pod)) return notApplicable;
      const ns = namespaceOf(resource, context);
      const pc = context.resolve(pod.spec.priority_class_name);
      const quotas = context.ofKindIn("resource_quota", ns).filter((q) => quotaCovers(q, typeof pc === "string" ? pc : undefined, context));
      if (quotas.length === 0) return notApplicable;
      const perPod = podGpus(pod);
      const { count, path: replicasPath } = concurrentPods(resource);
      const outcomes: Outcome[] = [];
      for (const quota of quotas) {
        const hard = get(quota.attributes, ["spec", "hard"]) as Record<string, unknown>;
        for (const [res, n] of perPod) {
          for (const key of [`requests.${res}`, `limits.${res}`, res]) {
            const cap = Number(context.resolve(hard[key]));
            if (!(key in hard) || !Number.isFinite(cap) || n * count <= cap) continue;
            const at = count > 1 && replicasPath ? replicasPath : path(...pod.specPath, "container", 0, "resources", "limits", res);
            outcomes.push(violation(at, `${count} pod(s) × ${n} ${res} exceed quota ${quota.address} (${key}: ${cap}) in namespace '${ns}'`));
          }
        }
      }
      return outcomes.length ? outcomes : compliant;
    });
  },
};
