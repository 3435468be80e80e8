import { labelsOf, nameOf } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { controls } from "./support.ts";

const ENFORCE = "pod-security.kubernetes.io/enforce";

export const namespacePodSecurityRestricted: Rule = {
  id: "GF-NS-001",
  name: "namespace-pod-security-restricted",
  level: "error",
  title: "Namespaces enforce the restricted Pod Security Standard",
  rationale:
    "Pod Security Admission at `restricted` makes the API server refuse privileged, root or host-namespace pods in the namespace, whatever tool created them; it backs up the synth-time checks at run time.",
  remediation:
    "Declare the namespace through a NetworkSegment (it sets the labels), or add the label `pod-security.kubernetes.io/enforce: restricted` to the namespace metadata.",
  controls: [controls.baseline("hardening"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1")],
  kinds: ["namespace"],
  check(resource, context) {
    const level = labelsOf(resource, context)[ENFORCE];
    return level === "restricted"
      ? compliant
      : violation(`metadata.labels["${ENFORCE}"]`, `namespace '${nameOf(resource, context) ?? resource.name}' enforces ${level ? `'${level}'` : "no Pod Security level"}, not 'restricted'`);
  },
};
