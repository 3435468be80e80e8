import { podSelectsGpuNodes, podUsesGpu } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Rule } from "../model.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

export const gpuNodeSelection: Rule = {
  id: "GF-GPU-003",
  name: "gpu-node-selection",
  level: "error",
  title: "GPU workloads select the GPU nodes they were sized for",
  rationale:
    "A stage sized for an 80 GB GPU that lands on a 24 GB one fails at model load, after queueing; selecting on `nvidia.com/gpu.product` (GPU Feature Discovery) pins it to the pool it was planned for.",
  remediation:
    "Set `node_selector` to the pool's `nodeSelector` (at least `nvidia.com/gpu.product`), or a required node affinity on a GPU Feature Discovery label.",
  controls: [controls.baseline("isolation"), controls.baseline("capacity")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      if (!podUsesGpu(pod)) return notApplicable;
      return podSelectsGpuNodes(pod, context)
        ? compliant
        : violation(path(...pod.specPath, "node_selector"), "the pod requests GPUs but selects no GPU node label (nvidia.com/gpu.product)");
    });
  },
};
