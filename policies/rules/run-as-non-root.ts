import { bool, get } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { checkContainers, controls, path, workloadKinds } from "./support.ts";

export const runAsNonRoot: Rule = {
  id: "GF-POD-001",
  name: "run-as-non-root",
  level: "error",
  title: "Containers run as a non-root user",
  rationale:
    "A root process that escapes its container (a CUDA driver or runtime bug is enough) is root on a GPU node shared by several tenants.",
  remediation:
    "Set `run_as_non_root = true` (and a non-zero `run_as_user`) in the pod or container security_context; gpufabric's agent does this by default.",
  controls: [controls.baseline("hardening"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkContainers(resource, context, ({ container, path: cpath, name }, pod) => {
      const podCtx = get(pod.spec, ["security_context"]);
      const ctx = get(container, ["security_context"]);
      const user = get(ctx, ["run_as_user"]) ?? get(podCtx, ["run_as_user"]);
      if (user === 0 || user === "0") return violation(path(...cpath, "security_context", "run_as_user"), `container '${name}' runs as uid 0`);
      const nonRoot = bool(get(ctx, ["run_as_non_root"])) ?? bool(get(podCtx, ["run_as_non_root"]));
      return nonRoot === true
        ? compliant
        : violation(path(...cpath, "security_context", "run_as_non_root"), `container '${name}' may run as root: run_as_non_root is not true`);
    });
  },
};
