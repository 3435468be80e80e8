import { get, nameOf, objects, asArray, selectsAll } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Resource, type Rule, type RuleContextView } from "../model.ts";
import { controls } from "./support.ts";

/** Whether the namespace has a policy selecting every pod that allows no traffic in `direction`. */
export function hasDefaultDeny(namespace: string, direction: "Ingress" | "Egress", context: RuleContextView): boolean {
  const block = direction === "Ingress" ? "ingress" : "egress";
  return context.ofKindIn("network_policy", namespace).some((np: Resource) => {
    const spec = get(np.attributes, ["spec"]);
    return (
      selectsAll(get(spec, ["pod_selector"])) &&
      asArray(get(spec, ["policy_types"])).includes(direction) &&
      objects(get(spec, [block])).length === 0
    );
  });
}

export const namespaceDefaultDenyIngress: Rule = {
  id: "GF-NET-001",
  name: "namespace-default-deny-ingress",
  level: "error",
  title: "Every namespace denies ingress by default",
  rationale:
    "Without a default-deny ingress NetworkPolicy any pod in the cluster can reach workloads of the namespace, so one compromised tenant workload can reach another tenant's stages, model servers or the agent API.",
  remediation:
    "Declare the namespace through a NetworkSegment (it adds a default-deny policy), or add a kubernetes_network_policy_v1 in the namespace with an empty pod_selector, policy_types [\"Ingress\"] and no ingress rules.",
  controls: [controls.baseline("network"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.6")],
  kinds: ["namespace"],
  check(resource, context) {
    const name = nameOf(resource, context);
    if (!name) return notApplicable;
    return hasDefaultDeny(name, "Ingress", context)
      ? compliant
      : violation("metadata.name", `namespace '${name}' has no NetworkPolicy that selects every pod and allows no ingress`);
  },
};
