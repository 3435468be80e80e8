import { bool, get } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { checkContainers, controls, path, workloadKinds } from "./support.ts";

export const noPrivilegeEscalation: Rule = {
  id: "GF-POD-003",
  name: "no-privilege-escalation",
  level: "error",
  title: "Containers cannot escalate privileges",
  rationale:
    "Kubernetes allows privilege escalation unless told otherwise: a setuid binary in a workflow image would give its process more rights than the container started with.",
  remediation: "Set `allow_privilege_escalation = false` in every container's security_context.",
  controls: [controls.baseline("hardening"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkContainers(resource, context, ({ container, path: cpath, name }) =>
      bool(get(container, ["security_context", "allow_privilege_escalation"])) === false
        ? compliant
        : violation(path(...cpath, "security_context", "allow_privilege_escalation"), `container '${name}' does not set allow_privilege_escalation = false`),
    );
  },
};
