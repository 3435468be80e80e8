import { nameOf, podUsesGpu } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Rule } from "../model.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

export const gpuPriorityClass: Rule = {
  id: "GF-GPU-008",
  name: "gpu-priority-class",
  level: "warning",
  title: "GPU workloads run with a declared priority class",
  rationale:
    "Without a priority class a GPU pod has priority 0: interactive work cannot preempt it and batch work cannot be told apart from it, so GPU preemption and the pool's quota scopes do not apply.",
  remediation: "Set `priority_class_name` to one of the pool's classes (`pool.priorityClassName(\"interactive\" | \"batch\")`), declared as a kubernetes_priority_class_v1.",
  controls: [controls.baseline("capacity")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      if (!podUsesGpu(pod)) return notApplicable;
      const name = context.resolve(pod.spec.priority_class_name);
      const at = path(...pod.specPath, "priority_class_name");
      if (typeof name !== "string" || name === "") return violation(at, "the pod requests GPUs without a priority class");
      const declared = context.ofKind("priority_class").some((pc) => nameOf(pc, context) === name);
      const builtIn = name === "system-cluster-critical" || name === "system-node-critical";
      return declared || builtIn ? compliant : violation(at, `priority class '${name}' is not declared in this configuration`);
    });
  },
};
