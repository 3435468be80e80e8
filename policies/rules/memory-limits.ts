import { get } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { checkContainers, controls, path, workloadKinds } from "./support.ts";

export const memoryLimits: Rule = {
  id: "GF-LIM-002",
  name: "memory-limits",
  level: "error",
  title: "Containers set a memory limit",
  rationale:
    "Model loading stages map tens of GiB of weights into host memory; without a limit one stage can push the node into OOM kills of other tenants' work.",
  remediation: "Set `resources { limits = { memory = \"...\" } }` on every container, sized for the largest model the stage loads.",
  controls: [controls.baseline("capacity"), controls.soc2("CC7.2")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkContainers(resource, context, ({ container, path: cpath, name }) =>
      get(container, ["resources", "limits", "memory"]) !== undefined
        ? compliant
        : violation(path(...cpath, "resources", "limits", "memory"), `container '${name}' has no memory limit`),
    );
  },
};
