import { containersOf, gpuAmounts, isGpuWorkload } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Outcome, type Rule } from "../model.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

export const gpuLimits: Rule = {
  id: "GF-GPU-001",
  name: "gpu-limits",
  level: "error",
  title: "GPU workloads set nvidia.com/gpu limits",
  rationale:
    "On a GPU node a container without a GPU limit is given no device by the device plugin, but CUDA images set NVIDIA_VISIBLE_DEVICES=all and the NVIDIA runtime then exposes every GPU of the node: the pod uses other tenants' GPUs outside any quota.",
  remediation:
    "Set `resources { limits = { \"nvidia.com/gpu\" = \"N\" } }` (or the pool's `gpuResourceName` under MIG) on the container that uses the GPU; requests of extended resources must equal the limits.",
  controls: [controls.baseline("isolation"), controls.baseline("capacity"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      if (!isGpuWorkload(pod, context)) return notApplicable;
      const outcomes: Outcome[] = [];
      let limited = false;
      for (const { container, path: cpath, name } of containersOf(pod)) {
        const limits = gpuAmounts(container, "limits");
        const requests = gpuAmounts(container, "requests");
        if (Object.values(limits).some((v) => v !== "0")) limited = true;
        for (const [res, amount] of Object.entries(requests)) {
          if (limits[res] !== amount) {
            outcomes.push(violation(path(...cpath, "resources", "limits", res), `container '${name}' requests ${amount} ${res} without an equal limit`));
          }
        }
      }
      if (!limited && outcomes.length === 0) {
        outcomes.push(violation(path(...pod.specPath, "container", 0, "resources", "limits", "nvidia.com/gpu"), "the pod targets GPU nodes but no container has a GPU limit"));
      }
      return outcomes.length ? outcomes : compliant;
    });
  },
};
