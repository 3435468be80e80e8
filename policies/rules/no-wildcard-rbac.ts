import { asArray, get, objects } from "../kubernetes.ts";
import { compliant, violation, type Outcome, type Rule } from "../model.ts";
import { controls, path } from "./support.ts";

export const noWildcardRbac: Rule = {
  id: "GF-RBAC-001",
  name: "no-wildcard-rbac",
  level: "error",
  title: "Roles grant no wildcard verbs or resources",
  rationale: "`*` grants every verb (escalate, impersonate, delete) on every present and future resource type: least privilege cannot be reviewed.",
  remediation: "List the verbs and resources the subject needs, e.g. verbs [\"get\", \"list\", \"watch\"] on [\"pods\"].",
  controls: [controls.baseline("access"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.3")],
  kinds: ["role", "cluster_role"],
  check(resource) {
    const outcomes: Outcome[] = [];
    objects(get(resource.attributes, ["rule"])).forEach((rule, i) => {
      for (const field of ["verbs", "resources", "api_groups"] as const) {
        if (asArray(rule[field]).includes("*") && (field !== "api_groups" || asArray(rule.resources).includes("*"))) {
          outcomes.push(violation(path("rule", i, field), `rule ${i} grants '*' in ${field}`));
        }
      }
    });
    return outcomes.length ? outcomes : compliant;
  },
};
