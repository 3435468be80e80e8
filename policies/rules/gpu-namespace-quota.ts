import { asArray, get, namespaceOf, objects, podUsesGpu } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Resource, type Rule, type RuleContextView } from "../model.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

const GPU_QUOTA_KEY = /^(requests\.|limits\.)?nvidia\.com\/(gpu|mig-)/;

/** Whether a ResourceQuota caps GPUs for pods of the given priority class (scope selectors on PriorityClass narrow it). */
export function quotaCovers(quota: Resource, priorityClass: string | undefined, context: RuleContextView): boolean {
  const hard = get(quota.attributes, ["spec", "hard"]);
  if (typeof hard !== "object" || hard === null || !Object.keys(hard).some((k) => GPU_QUOTA_KEY.test(k))) return false;
  for (const expr of objects(get(quota.attributes, ["spec", "scope_selector", "match_expression"]))) {
    if (expr.scope_name !== "PriorityClass") continue;
    const values = asArray(expr.values).map((v) => String(context.resolve(v)));
    const has = priorityClass !== undefined;
    if (expr.operator === "In" && !(has && values.includes(priorityClass))) return false;
    if (expr.operator === "NotIn" && has && values.includes(priorityClass)) return false;
    if (expr.operator === "Exists" && !has) return false;
    if (expr.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

export const gpuNamespaceQuota: Rule = {
  id: "GF-GPU-006",
  name: "gpu-namespace-quota",
  level: "error",
  title: "GPU workloads run under a GPU ResourceQuota",
  rationale:
    "A ResourceQuota on requests.nvidia.com/gpu is what Kubernetes itself enforces; a GPU pod outside any quota (wrong namespace, or a priority class the quota's scope does not cover) escapes the tenant's GPU cap.",
  remediation:
    "Run the workload in a segment where the GpuPool created tenant quotas, with one of the pool's priority classes (`pool.priorityClassName(...)`), or add a kubernetes_resource_quota_v1 with hard `requests.nvidia.com/gpu` in its namespace.",
  controls: [controls.baseline("capacity"), controls.soc2("CC6.3")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      if (!podUsesGpu(pod)) return notApplicable;
      const ns = namespaceOf(resource, context);
      const priorityClass = context.resolve(pod.spec.priority_class_name);
      const pc = typeof priorityClass === "string" ? priorityClass : undefined;
      const covered = context.ofKindIn("resource_quota", ns).some((q) => quotaCovers(q, pc, context));
      return covered
        ? compliant
        : violation(path(...pod.specPath, "priority_class_name"), `no ResourceQuota on nvidia.com/gpu in namespace '${ns}' covers pods of priority class '${pc ?? "(none)"}'`);
    });
  },
};
