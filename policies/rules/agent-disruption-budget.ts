import { get, isAgentWorkload, namespaceOf, podTemplateOf, selectorMatches } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Rule } from "../model.ts";
import { controls, workloadKinds } from "./support.ts";

export const agentDisruptionBudget: Rule = {
  id: "GF-AGT-003",
  name: "agent-disruption-budget",
  level: "warning",
  title: "The agent has a PodDisruptionBudget",
  rationale:
    "A node drain otherwise evicts every agent replica at once: submissions fail, and audit checkpoints of runs in flight wait until it comes back.",
  remediation: "Add a kubernetes_pod_disruption_budget_v1 in the agent's namespace whose selector matches the agent pod labels (WorkflowDeployment does).",
  controls: [controls.baseline("agent"), controls.soc2("CC7.2")],
  kinds: workloadKinds,
  check(resource, context) {
    if (!isAgentWorkload(resource, context)) return notApplicable;
    const pod = podTemplateOf(resource, context);
    if (!pod) return notApplicable;
    const ns = namespaceOf(resource, context);
    const covered = context
      .ofKindIn("pod_disruption_budget", ns)
      .some((pdb) => get(pdb.attributes, ["spec", "selector"]) !== undefined && selectorMatches(get(pdb.attributes, ["spec", "selector"]), pod.labels, context));
    return covered ? compliant : violation("metadata", `no PodDisruptionBudget in namespace '${ns}' selects the agent's pods`);
  },
};
