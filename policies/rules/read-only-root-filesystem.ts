import { bool, get } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { checkContainers, controls, path, workloadKinds } from "./support.ts";

export const readOnlyRootFilesystem: Rule = {
  id: "GF-POD-002",
  name: "read-only-root-filesystem",
  level: "error",
  title: "Containers have a read-only root filesystem",
  rationale:
    "A writable root filesystem lets a compromised stage replace binaries or libraries (e.g. a patched libcuda) that later stages load; integrity of the runtime is part of the integrity of the outputs.",
  remediation:
    "Set `read_only_root_filesystem = true` in the container security_context and mount an emptyDir or a volume where the process must write.",
  controls: [controls.baseline("hardening"), controls.hipaa("164.312(c)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkContainers(resource, context, ({ container, path: cpath, name }) =>
      bool(get(container, ["security_context", "read_only_root_filesystem"])) === true
        ? compliant
        : violation(path(...cpath, "security_context", "read_only_root_filesystem"), `container '${name}' has a writable root filesystem`),
    );
  },
};
