import { get } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { controls } from "./support.ts";

export const noClusterAdminBinding: Rule = {
  id: "GF-RBAC-002",
  name: "no-cluster-admin-binding",
  level: "error",
  title: "Nothing is bound to cluster-admin",
  rationale: "cluster-admin can read every tenant's Secrets and exec into every pod; no platform component needs it.",
  remediation: "Bind a Role (or ClusterRole) that lists only the verbs and resources the subject needs.",
  controls: [controls.baseline("access"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.3")],
  kinds: ["role_binding", "cluster_role_binding"],
  check(resource, context) {
    const role = context.resolve(get(resource.attributes, ["role_ref", "name"]));
    return role === "cluster-admin" ? violation("role_ref.name", "binds the cluster-admin ClusterRole") : compliant;
  },
};
