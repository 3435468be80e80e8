import { get, namespaceOf, selectorMatches } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

export const workloadNetworkPolicy: Rule = {
  id: "GF-NET-003",
  name: "workload-network-policy",
  level: "error",
  title: "Every workload is selected by a NetworkPolicy",
  rationale:
    "Pods that no NetworkPolicy selects accept and send any traffic, whatever the rest of the namespace does.",
  remediation:
    "Run the workload in a NetworkSegment's namespace (its default-deny policy selects every pod), or add a kubernetes_network_policy_v1 in the workload's namespace whose pod_selector matches the pod template labels.",
  controls: [controls.baseline("network"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.6")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      const ns = namespaceOf(resource, context);
      const covered = context
        .ofKindIn("network_policy", ns)
        .some((np) => selectorMatches(get(np.attributes, ["spec", "pod_selector"]), pod.labels, context));
      return covered
        ? compliant
        : violation(path(...pod.specPath.slice(0, -1), "metadata", "labels"), `no NetworkPolicy in namespace '${ns}' selects this workload's pods`);
    });
  },
};
