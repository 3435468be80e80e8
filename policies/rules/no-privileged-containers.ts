import { bool, get } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { checkContainers, controls, path, workloadKinds } from "./support.ts";

export const noPrivilegedContainers: Rule = {
  id: "GF-POD-006",
  name: "no-privileged-containers",
  level: "error",
  title: "No container is privileged",
  rationale:
    "A privileged container sees every device on the node, every GPU included, and can load kernel modules: it voids GPU isolation between tenants entirely.",
  remediation:
    "Remove `privileged = true`; request GPUs through `nvidia.com/gpu` limits so the device plugin exposes only the allocated devices.",
  controls: [controls.baseline("isolation"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkContainers(resource, context, ({ container, path: cpath, name }) =>
      bool(get(container, ["security_context", "privileged"])) === true
        ? violation(path(...cpath, "security_context", "privileged"), `container '${name}' is privileged`)
        : compliant,
    );
  },
};
