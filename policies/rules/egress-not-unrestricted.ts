import { get, objects } from "../kubernetes.ts";
import { compliant, violation, type Outcome, type Rule } from "../model.ts";
import { controls, path } from "./support.ts";

const ANYWHERE = new Set(["0.0.0.0/0", "::/0"]);

export const egressNotUnrestricted: Rule = {
  id: "GF-NET-005",
  name: "egress-not-unrestricted",
  level: "warning",
  title: "NetworkPolicies do not allow egress to the whole internet",
  rationale:
    "An egress rule to 0.0.0.0/0 undoes default-deny egress: tenant data and model weights can leave for any address.",
  remediation:
    "List the CIDRs the workload needs (NetworkSegment `egressCidrs`), or add `except` ranges that cover everything but the intended destinations.",
  controls: [controls.baseline("network"), controls.hipaa("164.312(e)"), controls.soc2("CC6.6")],
  kinds: ["network_policy"],
  check(resource) {
    const outcomes: Outcome[] = [];
    objects(get(resource.attributes, ["spec", "egress"])).forEach((rule, i) => {
      objects(rule.to).forEach((peer, j) => {
        const cidr = get(peer, ["ip_block", "cidr"]);
        const except = objects(get(peer, ["ip_block"])).flatMap((b) => (Array.isArray(b.except) ? b.except : []));
        if (typeof cidr === "string" && ANYWHERE.has(cidr) && except.length === 0) {
          outcomes.push(violation(path("spec", "egress", i, "to", j, "ip_block", "cidr"), `egress to ${cidr} with no exceptions allows any destination`));
        }
      });
    });
    return outcomes.length ? outcomes : compliant;
  },
};
