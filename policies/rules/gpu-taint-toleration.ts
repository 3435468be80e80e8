import { podToleratesGpuTaint, podUsesGpu } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Rule } from "../model.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

export const gpuTaintToleration: Rule = {
  id: "GF-GPU-002",
  name: "gpu-taint-toleration",
  level: "error",
  title: "GPU workloads tolerate the GPU node taint",
  rationale:
    "GPU nodes are tainted `nvidia.com/gpu:NoSchedule` so that only GPU work lands there; a GPU pod without the toleration never schedules, and removing the taint to make it fit lets CPU work crowd the GPU nodes.",
  remediation:
    "Add `toleration { key = \"nvidia.com/gpu\", operator = \"Exists\", effect = \"NoSchedule\" }` (GpuPool exposes it as `pool.tolerations`).",
  controls: [controls.baseline("isolation")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      if (!podUsesGpu(pod)) return notApplicable;
      return podToleratesGpuTaint(pod) ? compliant : violation(path(...pod.specPath, "toleration"), "the pod requests GPUs but does not tolerate nvidia.com/gpu:NoSchedule");
    });
  },
};
