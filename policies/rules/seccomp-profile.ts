import { get } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { checkContainers, controls, path, workloadKinds } from "./support.ts";

const CONFINED = new Set(["RuntimeDefault", "Localhost"]);

export const seccompProfile: Rule = {
  id: "GF-POD-005",
  name: "seccomp-profile",
  level: "error",
  title: "Containers run under a seccomp profile",
  rationale:
    "Without seccomp every system call is open to the container, including the ones most kernel escapes go through.",
  remediation:
    "Set `seccomp_profile { type = \"RuntimeDefault\" }` in the pod security_context (or per container; Localhost profiles are accepted).",
  controls: [controls.baseline("hardening"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkContainers(resource, context, ({ container, path: cpath, name }, pod) => {
      const type = get(container, ["security_context", "seccomp_profile", "type"]) ?? get(pod.spec, ["security_context", "seccomp_profile", "type"]);
      return typeof type === "string" && CONFINED.has(type)
        ? compliant
        : violation(path(...cpath, "security_context", "seccomp_profile", "type"), `container '${name}' runs ${type ? `with seccomp '${String(type)}'` : "without a seccomp profile"}`);
    });
  },
};
