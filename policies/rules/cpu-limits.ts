import { get } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { checkContainers, controls, path, workloadKinds } from "./support.ts";

export const cpuLimits: Rule = {
  id: "GF-LIM-001",
  name: "cpu-limits",
  level: "error",
  title: "Containers set a CPU limit",
  rationale:
    "GPU nodes have few CPUs per GPU; a stage without a CPU limit (tokenizers, image decoding) starves the data loaders of the other tenants' stages and leaves their GPUs idle.",
  remediation: "Set `resources { limits = { cpu = \"...\" } }` on every container.",
  controls: [controls.baseline("capacity"), controls.soc2("CC7.2")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkContainers(resource, context, ({ container, path: cpath, name }) =>
      get(container, ["resources", "limits", "cpu"]) !== undefined
        ? compliant
        : violation(path(...cpath, "resources", "limits", "cpu"), `container '${name}' has no CPU limit`),
    );
  },
};
