import { nameOf } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Rule } from "../model.ts";
import { hasDefaultDeny } from "./namespace-default-deny-ingress.ts";
import { controls } from "./support.ts";

export const namespaceDefaultDenyEgress: Rule = {
  id: "GF-NET-002",
  name: "namespace-default-deny-egress",
  level: "error",
  title: "Every namespace denies egress by default",
  rationale:
    "Workflow stages run third-party nodes and models; without default-deny egress a stage can send tenant data anywhere, inside or outside the cluster.",
  remediation:
    "Declare the namespace through a NetworkSegment (default-deny plus a DNS allowance and the egressCidrs you list), or add a kubernetes_network_policy_v1 with an empty pod_selector, policy_types [\"Egress\"] and no egress rules, then allow what is needed in further policies.",
  controls: [controls.baseline("network"), controls.hipaa("164.312(e)"), controls.soc2("CC6.6")],
  kinds: ["namespace"],
  check(resource, context) {
    const name = nameOf(resource, context);
    if (!name) return notApplicable;
    return hasDefaultDeny(name, "Egress", context)
      ? compliant
      : violation("metadata.name", `namespace '${name}' has no NetworkPolicy that selects every pod and allows no egress`);
  },
};
