import { bool, get, namespaceOf, nameOf } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

export const serviceAccountTokenAutomount: Rule = {
  id: "GF-POD-009",
  name: "service-account-token-automount-off",
  level: "error",
  title: "Pods do not mount a service account token they do not need",
  rationale:
    "An automounted token gives every process in the pod, workflow nodes included, the pod's Kubernetes API identity; stolen, it is a foothold in the cluster.",
  remediation:
    "Set `automount_service_account_token = false` in the pod spec (or on its kubernetes_service_account_v1), and mount a projected token only where the process calls the API.",
  controls: [controls.baseline("hardening"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1"), controls.soc2("CC6.3")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      const own = bool(pod.spec.automount_service_account_token);
      if (own === false) return compliant;
      const where = path(...pod.specPath, "automount_service_account_token");
      if (own === true) return violation(where, "the pod sets automount_service_account_token = true");
      const accountName = context.resolve(pod.spec.service_account_name) ?? "default";
      const ns = namespaceOf(resource, context);
      const account = context.ofKindIn("service_account", ns).find((sa) => nameOf(sa, context) === accountName);
      return account && bool(get(account.attributes, ["automount_service_account_token"])) === false
        ? compliant
        : violation(where, `the pod mounts the token of service account '${String(accountName)}': neither the pod nor the account turns automount off`);
    });
  },
};
